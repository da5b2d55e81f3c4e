// Validity masks (which pixels have a measurement, e.g. a valid 3-D point): one byte per pixel, four
// pixels per u32 word, pixel p in byte (p & 3) of word (p >> 2), non-zero = valid. Each shader declares
// its own binding of the words; this is the one test of a pixel's byte.

fn validByte(word: u32, p: u32) -> bool {
  return ((word >> (8u * (p & 3u))) & 0xffu) != 0u;
}

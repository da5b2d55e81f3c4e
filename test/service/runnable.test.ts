// Options and sizes that cannot run on the processing device are refused at submission with a typed
// error naming the size or option and the limit, and nothing is stored (issue 16, item 5).

import sharp from 'sharp';
import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/io/npy.ts';
import { BACKENDS, REPROCESS, SUBMIT, createProduct, file, rowCounts, startService, type TestService } from './helpers.ts';

async function tallFiles(width: number, height: number): Promise<Record<string, File>> {
  const png = await sharp(new Uint8Array(width * height).map((_, i) => i % 251), { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  const map = Float32Array.from({ length: width * height }, (_, i) => (i % 97) / 97);
  return { 'input.image': file(new Uint8Array(png), 'tall.png'), 'input.scoreMap': file(encodeNpy(map, [height, width]), 'tall.npy') };
}

/** An 8-bit grey PNG of this size cut after its first rows: a valid header, truncated pixel data. */
function truncatedPng(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.byteLength);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit grey, no interlace
  const rows = deflateSync(Buffer.alloc(8 * (width + 1)));
  return new Uint8Array(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', rows)]));
}

describe.each(BACKENDS)('submission check against the device on %s', (backend) => {
  let s: TestService;
  beforeAll(async () => {
    s = await startService(backend);
  });
  afterAll(async () => s?.close());

  it('a 1 x 60000 image with the network at its own size: TooLargeError naming the 2048-pixel side and features.inputSize; nothing stored', async () => {
    const productId = await createProduct(s, 'rod');
    const before = await rowCounts(s);
    const r = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await tallFiles(1, 60_000))).data!.submitInspection;
    expect(r).toEqual({
      __typename: 'TooLargeError',
      code: 'TOO_LARGE',
      message: "the network input would be 1x60000 (the image's size, features.inputSize=0): at most 2048 pixels per side; set features.inputSize to at most 2048",
    });
    expect(await rowCounts(s)).toEqual(before);
  });

  it('an image whose working map exceeds the device\'s storage binding is refused from its header, before any pixel is decoded', async () => {
    const productId = await createProduct(s, 'sheet');
    const limits = await s.processor.deviceLimits();
    // The smallest 8192-wide image whose map (one float per pixel) is over the binding.
    const width = 8192;
    const height = Math.floor(limits.maxStorageBufferBindingSize / 4 / width) + 1;
    // A grey PNG's header and the first rows of its pixel data, no more: decoding it would fail as a
    // truncated file, so only a refusal from the header can answer TOO_LARGE.
    const truncated = truncatedPng(width, height);
    const before = await rowCounts(s);
    const files = { 'input.image': file(truncated, 'sheet.png'), 'input.scoreMap': file(encodeNpy(Float32Array.from({ length: 64 * 2 }, (_, i) => i), [2, 64]), 'map.npy') };
    const r = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, files)).data!.submitInspection;
    const floats = Math.floor(limits.maxStorageBufferBindingSize / 4);
    expect(r).toEqual({
      __typename: 'TooLargeError',
      code: 'TOO_LARGE',
      message: `image: sheet.png: the image of ${width}x${height} pixels (its score map at the working resolution) needs ${width * height} floats in one buffer, more than this device's largest storage buffer (maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize} bytes = ${floats} floats)`,
    });
    expect(await rowCounts(s)).toEqual(before);
  });

  it('a 1 x 300000 image with the filterbank: TooLargeError naming the rows the image kernels take', async () => {
    const productId = await createProduct(s, 'wire', [{ key: 'features.extractor', value: 'filterbank' }]);
    const r = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await tallFiles(1, 300_000))).data!.submitInspection;
    expect(r.__typename).toBe('TooLargeError');
    expect(r.message).toBe('image: tall.png: the image is 1x300000: the image kernels take at most 262140 rows and 4194240 columns (maxComputeWorkgroupsPerDimension 65535)');
  });

  it('features.inputSize=2048 where the network at 2048 x 2048 exceeds the device\'s storage binding: InvalidOptionError naming the option', async () => {
    const productId = await createProduct(s, 'pin');
    const limits = await s.processor.deviceLimits();
    const files = await tallFiles(64, 64);
    const r = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, options: [{ key: 'features.inputSize', value: '2048' }] } }, files)).data!.submitInspection;
    // Block 1's expansion: 96 channels at 1024 x 1024.
    if (96 * 1024 * 1024 > limits.maxStorageBufferBindingSize / 4) {
      expect(r.__typename).toBe('InvalidOptionError');
      expect(r.message).toMatch(new RegExp(`^option features\\.inputSize: a network input of 2048x2048: .* more than this device's largest storage buffer \\(maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize} bytes`));
    } else {
      expect(r.__typename).toBe('SubmitInspectionSuccess');
    }
  });

  it('reprocess with options that do not fit: refused the same way, the inspection left as it was', async () => {
    const productId = await createProduct(s, 'tube', [{ key: 'features.inputSize', value: '1024' }]);
    // Allow the most costly input size, so that the device check is what refuses it.
    const limits = await s.gql(`mutation($p: ID!) { setProductOptionLimits(productId: $p, limits: [{key: "features.inputSize", value: "0"}]) { __typename } }`, { p: productId });
    expect(limits.data!.setProductOptionLimits.__typename).toBe('SetProductOptionLimitsSuccess');
    const r = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await tallFiles(200, 2100))).data!.submitInspection;
    expect(r.__typename).toBe('SubmitInspectionSuccess');
    await s.processor.drain();
    const again = (await s.gql(REPROCESS, { id: r.inspection.id, options: [{ key: 'features.inputSize', value: '0' }] })).data!.reprocessInspection;
    expect(again).toEqual({
      __typename: 'TooLargeError',
      code: 'TOO_LARGE',
      message: "the network input would be 200x2100 (the image's size, features.inputSize=0): at most 2048 pixels per side; set features.inputSize to at most 2048",
    });
    const row = await s.gql(`query($id: ID!) { inspection(id: $id) { status options { key value } } }`, { id: r.inspection.id });
    expect(row.data!.inspection).toEqual({ status: 'SUCCEEDED', options: [] });
  });
});

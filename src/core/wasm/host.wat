;; WebAssembly SIMD kernels of the host test-time stage (src/core/hostStage.ts): the same arithmetic and
;; summation order as its JS loops (f32 values promoted to f64, f64 sums; wasm never fuses a multiply-add),
;; so the results are bit-identical to them. Assembled by scripts/build-wasm.ts (wabt) into hostWasm.ts.
;; Features: C channels of n f32 values, channel-major, from byte offset $p; the caller leaves 16 readable
;; bytes after them (the pixel loops of predict read whole groups of 4 pixels).
(module
  (memory (export "memory") 1)

  ;; Per channel c, with shift = its first value: out[2c] = sum of (x - shift), out[2c + 1] = sum of
  ;; (x - shift)^2 (f64 at $out). Four partial sums per moment (pixels i mod 4) added as
  ;; ((s0 + s1) + s2) + s3, the remainder (n mod 4) into s0: the order of channelMoments.
  (func (export "moments") (param $p i32) (param $n i32) (param $C i32) (param $out i32)
    (local $c i32) (local $q i32) (local $i i32) (local $end i32)
    (local $shift f64) (local $sh v128) (local $lo v128) (local $hi v128)
    (local $sA v128) (local $sB v128) (local $qA v128) (local $qB v128)
    (local $a0 f64) (local $q0 f64) (local $e f64)
    (block $done (loop $chan
      (br_if $done (i32.ge_u (local.get $c) (local.get $C)))
      (local.set $q (i32.add (local.get $p) (i32.shl (i32.mul (local.get $c) (local.get $n)) (i32.const 2))))
      (local.set $shift (if (result f64) (local.get $n)
        (then (f64.promote_f32 (f32.load (local.get $q)))) (else (f64.const 0))))
      (local.set $sh (f64x2.splat (local.get $shift)))
      (local.set $sA (v128.const i64x2 0 0))
      (local.set $sB (v128.const i64x2 0 0))
      (local.set $qA (v128.const i64x2 0 0))
      (local.set $qB (v128.const i64x2 0 0))
      (local.set $i (local.get $q))
      (local.set $end (i32.add (local.get $q) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
      (block $end4 (loop $four
        (br_if $end4 (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $lo (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $i))) (local.get $sh)))
        (local.set $hi (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $i))) (local.get $sh)))
        (local.set $sA (f64x2.add (local.get $sA) (local.get $lo)))
        (local.set $sB (f64x2.add (local.get $sB) (local.get $hi)))
        (local.set $qA (f64x2.add (local.get $qA) (f64x2.mul (local.get $lo) (local.get $lo))))
        (local.set $qB (f64x2.add (local.get $qB) (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $four)))
      (local.set $a0 (f64x2.extract_lane 0 (local.get $sA)))
      (local.set $q0 (f64x2.extract_lane 0 (local.get $qA)))
      (local.set $end (i32.add (local.get $q) (i32.shl (local.get $n) (i32.const 2))))
      (block $end1 (loop $one
        (br_if $end1 (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $e (f64.sub (f64.promote_f32 (f32.load (local.get $i))) (local.get $shift)))
        (local.set $a0 (f64.add (local.get $a0) (local.get $e)))
        (local.set $q0 (f64.add (local.get $q0) (f64.mul (local.get $e) (local.get $e))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $one)))
      (f64.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 4)))
        (f64.add (f64.add (f64.add (local.get $a0) (f64x2.extract_lane 1 (local.get $sA)))
          (f64x2.extract_lane 0 (local.get $sB))) (f64x2.extract_lane 1 (local.get $sB))))
      (f64.store offset=8 (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 4)))
        (f64.add (f64.add (f64.add (local.get $q0) (f64x2.extract_lane 1 (local.get $qA)))
          (f64x2.extract_lane 0 (local.get $qB))) (f64x2.extract_lane 1 (local.get $qB))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $chan)))
  )

  ;; mask[i] = (bias + sum_c w[c] x[c][i] > 0) and (f64(scores[i]) > floor), 1 or 0 (u8 at $mask), over
  ;; tiles of $tile pixels whose f64 accumulators ($acc, $tile + 4 of them) stay in cache: 8 channels per
  ;; sweep as ((w0x0 + w1x1) + w2x2) + w3x3 + (((w4x4 + ...))), then 4, then 1, the order of hostPredictMask.
  ;; The pixels go in groups of 4: up to 3 accumulators past a tile's end are computed and never read.
  (func (export "predict") (param $p i32) (param $n i32) (param $C i32) (param $w i32) (param $bias f64)
      (param $acc i32) (param $tile i32) (param $scores i32) (param $floor f64) (param $mask i32)
    (local $t0 i32) (local $len i32) (local $len4 i32) (local $c i32) (local $j i32) (local $b v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $w4 v128) (local $w5 v128) (local $w6 v128) (local $w7 v128)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32) (local $o4 i32) (local $o5 i32) (local $o6 i32) (local $o7 i32)
    (local.set $b (f64x2.splat (local.get $bias)))
    (block $tilesDone (loop $tiles
      (br_if $tilesDone (i32.ge_u (local.get $t0) (local.get $n)))
      (local.set $len (i32.sub (local.get $n) (local.get $t0)))
      (if (i32.gt_u (local.get $len) (local.get $tile)) (then (local.set $len (local.get $tile))))
      ;; bytes of f32 per group of 4 pixels: 16; len4 = bytes of the groups
      (local.set $len4 (i32.shl (i32.and (i32.add (local.get $len) (i32.const 3)) (i32.const -4)) (i32.const 2)))
      (local.set $j (i32.const 0))
      (block $fillEnd (loop $fill
        (br_if $fillEnd (i32.ge_u (local.get $j) (local.get $len4)))
        (v128.store (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (local.get $b))
        (v128.store offset=16 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (local.get $b))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $fill)))
      (local.set $c (i32.const 0))
        ;; 8 channel(s) per sweep of the tile
        (block $end8 (loop $ch8
          (br_if $end8 (i32.gt_s (i32.add (local.get $c) (i32.const 7)) (i32.sub (local.get $C) (i32.const 1))))
          (local.set $w0 (f64x2.splat (f64.load offset=0 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w1 (f64x2.splat (f64.load offset=8 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w2 (f64x2.splat (f64.load offset=16 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w3 (f64x2.splat (f64.load offset=24 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w4 (f64x2.splat (f64.load offset=32 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w5 (f64x2.splat (f64.load offset=40 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w6 (f64x2.splat (f64.load offset=48 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w7 (f64x2.splat (f64.load offset=56 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $o0 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 0)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o1 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 1)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o2 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 2)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o3 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 3)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o4 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 4)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o5 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 5)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o6 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 6)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o7 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 7)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $j (i32.const 0))
          (block $pend8 (loop $px8
            (br_if $pend8 (i32.ge_u (local.get $j) (local.get $len4)))
              (v128.store offset=0 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (f64x2.add (v128.load offset=0 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1)))) (f64x2.add (f64x2.add (f64x2.add (f64x2.add (f64x2.mul (local.get $w0) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o0) (local.get $j))))) (f64x2.mul (local.get $w1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o1) (local.get $j)))))) (f64x2.mul (local.get $w2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o2) (local.get $j)))))) (f64x2.mul (local.get $w3) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o3) (local.get $j)))))) (f64x2.add (f64x2.add (f64x2.add (f64x2.mul (local.get $w4) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o4) (local.get $j))))) (f64x2.mul (local.get $w5) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o5) (local.get $j)))))) (f64x2.mul (local.get $w6) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o6) (local.get $j)))))) (f64x2.mul (local.get $w7) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o7) (local.get $j)))))))))
              (v128.store offset=16 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (f64x2.add (v128.load offset=16 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1)))) (f64x2.add (f64x2.add (f64x2.add (f64x2.add (f64x2.mul (local.get $w0) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o0) (local.get $j))))) (f64x2.mul (local.get $w1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o1) (local.get $j)))))) (f64x2.mul (local.get $w2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o2) (local.get $j)))))) (f64x2.mul (local.get $w3) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o3) (local.get $j)))))) (f64x2.add (f64x2.add (f64x2.add (f64x2.mul (local.get $w4) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o4) (local.get $j))))) (f64x2.mul (local.get $w5) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o5) (local.get $j)))))) (f64x2.mul (local.get $w6) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o6) (local.get $j)))))) (f64x2.mul (local.get $w7) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o7) (local.get $j)))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $px8)))
          (local.set $c (i32.add (local.get $c) (i32.const 8)))
          (br $ch8)))
        ;; 4 channel(s) per sweep of the tile
        (block $end4 (loop $ch4
          (br_if $end4 (i32.gt_s (i32.add (local.get $c) (i32.const 3)) (i32.sub (local.get $C) (i32.const 1))))
          (local.set $w0 (f64x2.splat (f64.load offset=0 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w1 (f64x2.splat (f64.load offset=8 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w2 (f64x2.splat (f64.load offset=16 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $w3 (f64x2.splat (f64.load offset=24 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $o0 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 0)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o1 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 1)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o2 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 2)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $o3 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 3)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $j (i32.const 0))
          (block $pend4 (loop $px4
            (br_if $pend4 (i32.ge_u (local.get $j) (local.get $len4)))
              (v128.store offset=0 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (f64x2.add (v128.load offset=0 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1)))) (f64x2.add (f64x2.add (f64x2.add (f64x2.mul (local.get $w0) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o0) (local.get $j))))) (f64x2.mul (local.get $w1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o1) (local.get $j)))))) (f64x2.mul (local.get $w2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o2) (local.get $j)))))) (f64x2.mul (local.get $w3) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o3) (local.get $j))))))))
              (v128.store offset=16 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (f64x2.add (v128.load offset=16 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1)))) (f64x2.add (f64x2.add (f64x2.add (f64x2.mul (local.get $w0) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o0) (local.get $j))))) (f64x2.mul (local.get $w1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o1) (local.get $j)))))) (f64x2.mul (local.get $w2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o2) (local.get $j)))))) (f64x2.mul (local.get $w3) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o3) (local.get $j))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $px4)))
          (local.set $c (i32.add (local.get $c) (i32.const 4)))
          (br $ch4)))
        ;; 1 channel(s) per sweep of the tile
        (block $end1 (loop $ch1
          (br_if $end1 (i32.gt_s (i32.add (local.get $c) (i32.const 0)) (i32.sub (local.get $C) (i32.const 1))))
          (local.set $w0 (f64x2.splat (f64.load offset=0 (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 3))))))
          (local.set $o0 (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.add (local.get $c) (i32.const 0)) (local.get $n)) (local.get $t0)) (i32.const 2))))
          (local.set $j (i32.const 0))
          (block $pend1 (loop $px1
            (br_if $pend1 (i32.ge_u (local.get $j) (local.get $len4)))
              (v128.store offset=0 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (f64x2.add (v128.load offset=0 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1)))) (f64x2.mul (local.get $w0) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (i32.add (local.get $o0) (local.get $j)))))))
              (v128.store offset=16 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))) (f64x2.add (v128.load offset=16 (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1)))) (f64x2.mul (local.get $w0) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $o0) (local.get $j)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $px1)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $ch1)))
      ;; the decisions
      (local.set $j (i32.const 0))
      (block $maskEnd (loop $m
        (br_if $maskEnd (i32.ge_u (local.get $j) (local.get $len)))
        (i32.store8 (i32.add (local.get $mask) (i32.add (local.get $t0) (local.get $j)))
          (i32.and
            (f64.gt (f64.load (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 3)))) (f64.const 0))
            (f64.gt (f64.promote_f32 (f32.load (i32.add (local.get $scores) (i32.shl (i32.add (local.get $t0) (local.get $j)) (i32.const 2)))))
              (local.get $floor))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $m)))
      (local.set $t0 (i32.add (local.get $t0) (local.get $tile)))
      (br $tiles)))
  )

  ;; The score map's extremes (f32 at $out: min, max) over n f32 values at $p (n > 0; NaN-free input:
  ;; the caller checks that both are finite, else runs its JS loop).
  (func (export "minmax") (param $p i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $mn v128) (local $mx v128) (local $v v128) (local $a f32) (local $b f32)
    (local.set $mn (f32x4.splat (f32.load (local.get $p))))
    (local.set $mx (local.get $mn))
    (local.set $i (local.get $p))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $e4 (loop $l4
      (br_if $e4 (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $v (v128.load (local.get $i)))
      (local.set $mn (f32x4.min (local.get $mn) (local.get $v)))
      (local.set $mx (f32x4.max (local.get $mx) (local.get $v)))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $l4)))
    (local.set $a (f32.min (f32.min (f32x4.extract_lane 0 (local.get $mn)) (f32x4.extract_lane 1 (local.get $mn)))
      (f32.min (f32x4.extract_lane 2 (local.get $mn)) (f32x4.extract_lane 3 (local.get $mn)))))
    (local.set $b (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx)))
      (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx)))))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $e1 (loop $l1
      (br_if $e1 (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $a (f32.min (local.get $a) (f32.load (local.get $i))))
      (local.set $b (f32.max (local.get $b) (f32.load (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l1)))
    (f32.store (local.get $out) (local.get $a))
    (f32.store offset=4 (local.get $out) (local.get $b))
  )

  ;; The histogram bin of each of n f32 values at $p (u16 at $out), with the shaders' f32 arithmetic:
  ;; clamp(trunc((v - min) * scale), 0, 4095), NaN -> 0: binPixels' Math.fround expression exactly.
  (func (export "bins") (param $p i32) (param $n i32) (param $min f32) (param $scale f32) (param $out i32)
    (local $i i32) (local $o i32) (local $end i32) (local $mn v128) (local $sc v128) (local $hi v128) (local $b f32)
    (local.set $mn (f32x4.splat (local.get $min)))
    (local.set $sc (f32x4.splat (local.get $scale)))
    (local.set $hi (i32x4.splat (i32.const 4095)))
    (local.set $i (local.get $p))
    (local.set $o (local.get $out))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (block $e8 (loop $l8
      (br_if $e8 (i32.ge_u (local.get $i) (local.get $end)))
      (v128.store (local.get $o) (i16x8.narrow_i32x4_u
        (i32x4.max_s (i32x4.min_s (i32x4.trunc_sat_f32x4_s
          (f32x4.mul (f32x4.sub (v128.load (local.get $i)) (local.get $mn)) (local.get $sc))) (local.get $hi)) (v128.const i32x4 0 0 0 0))
        (i32x4.max_s (i32x4.min_s (i32x4.trunc_sat_f32x4_s
          (f32x4.mul (f32x4.sub (v128.load offset=16 (local.get $i)) (local.get $mn)) (local.get $sc))) (local.get $hi)) (v128.const i32x4 0 0 0 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l8)))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $e1 (loop $l1
      (br_if $e1 (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $b (f32.mul (f32.sub (f32.load (local.get $i)) (local.get $min)) (local.get $scale)))
      (i32.store16 (local.get $o)
        (if (result i32) (f32.gt (local.get $b) (f32.const 0))
          (then (if (result i32) (f32.ge (local.get $b) (f32.const 4095)) (then (i32.const 4095)) (else (i32.trunc_f32_s (local.get $b)))))
          (else (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (local.set $o (i32.add (local.get $o) (i32.const 2)))
      (br $l1)))
  )
)

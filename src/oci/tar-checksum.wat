;; The byte sum of one 512-byte tar header block, as WebAssembly with 128-bit SIMD. Written by
;; hand for this project; scripts/build-wasm.mjs turns it into tar-checksum-wasm.ts.
;;
;; Why: every entry of every layer has its header checksum checked, and the JavaScript loop over
;; 512 bytes took 0.5-1 µs a header (2 ms of node-app's 2,166 entries); sixteen bytes a step here
;; take about 0.1 µs, the copy into this memory included.
;;
;; sum512(in): the sum of the 512 bytes at `in`, each read as unsigned.
(module
  (memory (export "memory") 1)
  (func (export "sum512") (param $in i32) (result i32)
    (local $i i32) (local $sums v128)
    (loop $vectors
      ;; Sixteen bytes widened pairwise twice into four 32-bit lane sums.
      (local.set $sums (i32x4.add (local.get $sums)
        (i32x4.extadd_pairwise_i16x8_u
          (i16x8.extadd_pairwise_i8x16_u (v128.load align=1 (i32.add (local.get $in) (local.get $i)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $vectors (i32.lt_u (local.get $i) (i32.const 512))))
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $sums)) (i32x4.extract_lane 1 (local.get $sums)))
      (i32.add (i32x4.extract_lane 2 (local.get $sums)) (i32x4.extract_lane 3 (local.get $sums))))))

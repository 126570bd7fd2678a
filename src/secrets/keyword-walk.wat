;; The keyword automaton's byte walk (see automatonKeywordsInBytes in engine.ts), as WebAssembly.
;; Written by hand for this project; scripts/build-wasm.mjs turns it into keyword-walk-wasm.ts.
;;
;; Why: the walk is one table load per byte, a chain of dependent loads. V8 runs the JavaScript
;; loop at about 2 ns per byte; compiled WebAssembly, without typed-array bounds checks, at about
;; 1 ns, copy into its memory included. On a text-heavy image this walk is most of the secret
;; search, and the secret search most of the scan.
;;
;; walk(next, cls, in, n, mid, j, hits, max) walks the n bytes at `in` twice side by side, as the
;; JavaScript does: one walk over [0, mid), one from j (maxLength - 1 bytes before mid) to n.
;;   next: the transition table, i32 entries; an entry is the next state's offset into the table
;;         (state number times class count), or its bitwise complement when a keyword ends there.
;;   cls:  256 bytes, the class of each byte value.
;;   hits: room for `max` i32 slots; each accepting state reached is written there, in order.
;; Returns how many accepting states were reached. A count above `max` means some were not
;; written, and the caller must walk in JavaScript instead.
(module
  (memory (export "memory") 1)
  (func (export "walk")
    (param $next i32) (param $cls i32) (param $in i32) (param $n i32)
    (param $mid i32) (param $j i32) (param $hits i32) (param $max i32)
    (result i32)
    (local $i i32) (local $x i32) (local $y i32) (local $first i32) (local $second i32) (local $h i32)
    (block $firstHalfDone
      (loop $bothWalks
        (br_if $firstHalfDone (i32.ge_u (local.get $i) (local.get $mid)))
        ;; next[state + cls[byte]], written out: Node 20's V8 does not inline WebAssembly calls, and
        ;; a call per byte doubled the time.
        (local.set $x (i32.load (i32.add (local.get $next) (i32.shl (i32.add (local.get $first)
          (i32.load8_u (i32.add (local.get $cls) (i32.load8_u (i32.add (local.get $in) (local.get $i)))))) (i32.const 2)))))
        (local.set $y (i32.load (i32.add (local.get $next) (i32.shl (i32.add (local.get $second)
          (i32.load8_u (i32.add (local.get $cls) (i32.load8_u (i32.add (local.get $in) (local.get $j)))))) (i32.const 2)))))
        ;; Negative: a keyword ends there. One test for both, since it is rare.
        (if (i32.lt_s (i32.or (local.get $x) (local.get $y)) (i32.const 0))
          (then
            (if (i32.lt_s (local.get $x) (i32.const 0))
              (then
                (local.set $x (i32.xor (local.get $x) (i32.const -1)))
                (local.set $h (call $record (local.get $hits) (local.get $max) (local.get $h) (local.get $x)))))
            (if (i32.lt_s (local.get $y) (i32.const 0))
              (then
                (local.set $y (i32.xor (local.get $y) (i32.const -1)))
                (local.set $h (call $record (local.get $hits) (local.get $max) (local.get $h) (local.get $y)))))))
        (local.set $first (local.get $x))
        (local.set $second (local.get $y))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $bothWalks)))
    (block $secondHalfDone
      (loop $secondWalk
        (br_if $secondHalfDone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $y (i32.load (i32.add (local.get $next) (i32.shl (i32.add (local.get $second)
          (i32.load8_u (i32.add (local.get $cls) (i32.load8_u (i32.add (local.get $in) (local.get $j)))))) (i32.const 2)))))
        (if (i32.lt_s (local.get $y) (i32.const 0))
          (then
            (local.set $y (i32.xor (local.get $y) (i32.const -1)))
            (local.set $h (call $record (local.get $hits) (local.get $max) (local.get $h) (local.get $y)))))
        (local.set $second (local.get $y))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $secondWalk)))
    (local.get $h))

  ;; Writes `state` into slot h while there is room; returns h + 1 either way. A call, since it is rare.
  (func $record (param $hits i32) (param $max i32) (param $h i32) (param $state i32) (result i32)
    (if (i32.lt_u (local.get $h) (local.get $max))
      (then (i32.store (i32.add (local.get $hits) (i32.shl (local.get $h) (i32.const 2))) (local.get $state))))
    (i32.add (local.get $h) (i32.const 1))))

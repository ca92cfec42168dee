;; SIMD kernels of the tensor statistics (src/ops/stats.ts) and of the comparison of tensor pairs
;; (src/ops/value-stats.ts), for float32 and float64 values that lie in the thread's WebAssembly
;; memory (src/ops/stats-kernels.ts). Built into stats-kernels-wasm.ts by `npm run build:wasm`;
;; test/stats-kernels.test.ts checks that the bytes there are this text's.
;;
;; Every kernel goes block by block, BLOCK (65,536) elements from the start of the values it is
;; given: a block's sums are reduced on their own, in a fixed order, then added in block order, so
;; results only depend on where the blocks start (the tensor's start), never on how the caller cut
;; the tensor into pieces of whole blocks. (stats.ts calls range and spread a block at a time, to
;; add each block's sum itself.)
;;
;; Pass 1 (range32/range64) keeps each lane's min and max with pmin/pmax (`v < min ? v : min`, as
;; the JavaScript did); lanes only disagree on the sign of a zero, settled by the first zero of the
;; block. It stops before the first block holding NaN or an infinity (its sum is not finite) and
;; says where: the caller reads that block carefully and calls again from the next one.
;; Pass 2 (spread32/spread64) is for tensors without NaN or infinities: squared deviations from the
;; mean, and the histogram bin of each value, computed in float64 as `trunc((v - min) * scale)`
;; (0…32; 32 only for the largest values, counted in the last bin by the caller). The caller passes
;; min and scale 0 where every value's bin is 0 (a single value, a float64 range too wide or too
;; narrow to hold), so the positions (v - min) * scale are always finite and ≥ 0. Bins are counted
;; by pairs of consecutive values, one increment per two values, in two tables that alternate, so
;; that consecutive increments rarely wait on each other.
(module
  (import "env" "memory" (memory 1))

  ;; The kernels' area at the start of memory (stats-kernels.ts reads it):
  ;;   [0, 4356) and [4608, 8964): pair tables, 33 × 33 int32 counters: pair (b0, b1) at b0·33 + b1;
  ;;   [9216, 9348): 33 int32 counters of single values (the last of a block that is not a multiple of 4);
  ;;   [9472, 9512): pass 1 results as float64: min, max, sum, zeros, subnormal;
  ;;   [9536, 9584): the comparison's running accumulators as float64 (in value-stats.ts's Acc order).

  ;; The first element of [start, end) equal to zero (0 or -0): which zero a min or max of 0 is.
  (func $firstZero32 (param $p i32) (param $at i32) (param $end i32) (result f32)
    (local $x f32)
    (loop $scan
      (local.set $x (f32.load (i32.add (local.get $p) (i32.shl (local.get $at) (i32.const 2)))))
      (if (f32.eq (local.get $x) (f32.const 0)) (then (return (local.get $x))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br_if $scan (i32.lt_u (local.get $at) (local.get $end))))
    (f32.const 0))

  (func $firstZero64 (param $p i32) (param $at i32) (param $end i32) (result f64)
    (local $x f64)
    (loop $scan
      (local.set $x (f64.load (i32.add (local.get $p) (i32.shl (local.get $at) (i32.const 3)))))
      (if (f64.eq (local.get $x) (f64.const 0)) (then (return (local.get $x))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br_if $scan (i32.lt_u (local.get $at) (local.get $end))))
    (f64.const 0))

  ;; The zeros, and the values below $tiny in magnitude (zeros included), of [$from, $to) (a multiple of 4 values).
  (func $countTiny32 (param $p i32) (param $from i32) (param $to i32) (param $tiny v128) (result i32 i32)
    (local $v v128) (local $zeroLanes v128) (local $tinyLanes v128)
    (block $done
      (loop $vector
        (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
        (local.set $v (v128.load align=4 (i32.add (local.get $p) (i32.shl (local.get $from) (i32.const 2)))))
        ;; Comparisons give -1 in each lane that holds: subtracting counts it.
        (local.set $zeroLanes (i32x4.sub (local.get $zeroLanes) (f32x4.eq (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $tinyLanes (i32x4.sub (local.get $tinyLanes) (f32x4.lt (f32x4.abs (local.get $v)) (local.get $tiny))))
        (local.set $from (i32.add (local.get $from) (i32.const 4)))
        (br $vector)))
    (i32.add (i32.add (i32x4.extract_lane 0 (local.get $zeroLanes)) (i32x4.extract_lane 1 (local.get $zeroLanes)))
      (i32.add (i32x4.extract_lane 2 (local.get $zeroLanes)) (i32x4.extract_lane 3 (local.get $zeroLanes))))
    (i32.add (i32.add (i32x4.extract_lane 0 (local.get $tinyLanes)) (i32x4.extract_lane 1 (local.get $tinyLanes)))
      (i32.add (i32x4.extract_lane 2 (local.get $tinyLanes)) (i32x4.extract_lane 3 (local.get $tinyLanes)))))

  ;; Pass 1 over $n float32 values at $p, starting from the running min and max. Writes min, max,
  ;; the sum (of the blocks' sums, in order) and the zeros and subnormals (|v| < $tiny) counted at
  ;; 9472 and returns the values done: $n, or the start of the first block holding NaN or an infinity.
  (func (export "range32") (param $p i32) (param $n i32) (param $tiny f32) (param $min0 f64) (param $max0 f64) (result i32)
    (local $total f64)
    (local $at i32) (local $end i32) (local $i i32) (local $address i32)
    (local $min f32) (local $max f32) (local $blockMin f32) (local $blockMax f32) (local $x f32)
    (local $sum f64) (local $zeros f64) (local $subnormal f64) (local $blockZeros i32) (local $blockTiny i32)
    (local $v v128) (local $w v128) (local $vMin v128) (local $wMin v128) (local $vMax v128) (local $wMax v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $vAbsMin v128) (local $wAbsMin v128) (local $tinySplat v128)
    (local.set $min (f32.demote_f64 (local.get $min0)))
    (local.set $max (f32.demote_f64 (local.get $max0)))
    (local.set $tinySplat (f32x4.splat (local.get $tiny)))
    (block $stop
      (loop $blocks
        (br_if $stop (i32.ge_u (local.get $at) (local.get $n)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (if (i32.gt_u (local.get $end) (local.get $n)) (then (local.set $end (local.get $n))))
        (local.set $vMin (f32x4.splat (local.get $min)))
        (local.set $wMin (local.get $vMin))
        (local.set $vMax (f32x4.splat (local.get $max)))
        (local.set $wMax (local.get $vMax))
        (local.set $s0 (v128.const i64x2 0 0))
        (local.set $s1 (v128.const i64x2 0 0))
        (local.set $s2 (v128.const i64x2 0 0))
        (local.set $s3 (v128.const i64x2 0 0))
        (local.set $vAbsMin (v128.const f32x4 inf inf inf inf))
        (local.set $wAbsMin (local.get $vAbsMin))
        (local.set $i (local.get $at))
        ;; Eight values a turn: four float64 sums, two mins and two maxes that do not wait on each other.
        (block $vectorDone
          (loop $vector
            (br_if $vectorDone (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $end)))
            (local.set $address (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))
            (local.set $v (v128.load align=4 (local.get $address)))
            (local.set $w (v128.load offset=16 align=4 (local.get $address)))
            (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v))))
            (local.set $s1 (f64x2.add (local.get $s1) (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
            (local.set $s2 (f64x2.add (local.get $s2) (f64x2.promote_low_f32x4 (local.get $w))))
            (local.set $s3 (f64x2.add (local.get $s3) (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w)))))
            (local.set $vMin (f32x4.pmin (local.get $vMin) (local.get $v)))
            (local.set $wMin (f32x4.pmin (local.get $wMin) (local.get $w)))
            (local.set $vMax (f32x4.pmax (local.get $vMax) (local.get $v)))
            (local.set $wMax (f32x4.pmax (local.get $wMax) (local.get $w)))
            ;; The smallest |v|: zeros and subnormals are counted only in a block that has some.
            (local.set $vAbsMin (f32x4.pmin (local.get $vAbsMin) (f32x4.abs (local.get $v))))
            (local.set $wAbsMin (f32x4.pmin (local.get $wAbsMin) (f32x4.abs (local.get $w))))
            (local.set $i (i32.add (local.get $i) (i32.const 8)))
            (br $vector)))
        (local.set $sum (f64.add
          (f64.add
            (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0)))
            (f64.add (f64x2.extract_lane 0 (local.get $s1)) (f64x2.extract_lane 1 (local.get $s1))))
          (f64.add
            (f64.add (f64x2.extract_lane 0 (local.get $s2)) (f64x2.extract_lane 1 (local.get $s2)))
            (f64.add (f64x2.extract_lane 0 (local.get $s3)) (f64x2.extract_lane 1 (local.get $s3))))))
        (local.set $vMin (f32x4.pmin (local.get $vMin) (local.get $wMin)))
        (local.set $vMax (f32x4.pmax (local.get $vMax) (local.get $wMax)))
        (local.set $blockMin (f32.min
          (f32.min (f32x4.extract_lane 0 (local.get $vMin)) (f32x4.extract_lane 1 (local.get $vMin)))
          (f32.min (f32x4.extract_lane 2 (local.get $vMin)) (f32x4.extract_lane 3 (local.get $vMin)))))
        (local.set $blockMax (f32.max
          (f32.max (f32x4.extract_lane 0 (local.get $vMax)) (f32x4.extract_lane 1 (local.get $vMax)))
          (f32.max (f32x4.extract_lane 2 (local.get $vMax)) (f32x4.extract_lane 3 (local.get $vMax)))))
        (local.set $blockZeros (i32.const 0))
        (local.set $blockTiny (i32.const 0))
        (if (v128.any_true (f32x4.lt (f32x4.pmin (local.get $vAbsMin) (local.get $wAbsMin)) (local.get $tinySplat)))
          (then
            (call $countTiny32 (local.get $p) (local.get $at) (local.get $i) (local.get $tinySplat))
            (local.set $blockTiny)
            (local.set $blockZeros)))
        ;; The last values of a block that is not a multiple of eight, one by one.
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $x (f32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $sum (f64.add (local.get $sum) (f64.promote_f32 (local.get $x))))
            (local.set $blockMin (select (local.get $x) (local.get $blockMin) (f32.lt (local.get $x) (local.get $blockMin))))
            (local.set $blockMax (select (local.get $x) (local.get $blockMax) (f32.gt (local.get $x) (local.get $blockMax))))
            (local.set $blockZeros (i32.add (local.get $blockZeros) (f32.eq (local.get $x) (f32.const 0))))
            (local.set $blockTiny (i32.add (local.get $blockTiny) (f32.lt (f32.abs (local.get $x)) (local.get $tiny))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        ;; NaN or an infinity makes the sum NaN or infinite: leave this block to the caller.
        (br_if $stop (f64.ne (f64.sub (local.get $sum) (local.get $sum)) (f64.const 0)))
        ;; A new min or max of zero is the block's first zero; a tie keeps the earlier value.
        (if (f32.lt (local.get $blockMin) (local.get $min))
          (then (local.set $min (if (result f32) (f32.eq (local.get $blockMin) (f32.const 0))
            (then (call $firstZero32 (local.get $p) (local.get $at) (local.get $end)))
            (else (local.get $blockMin))))))
        (if (f32.gt (local.get $blockMax) (local.get $max))
          (then (local.set $max (if (result f32) (f32.eq (local.get $blockMax) (f32.const 0))
            (then (call $firstZero32 (local.get $p) (local.get $at) (local.get $end)))
            (else (local.get $blockMax))))))
        (local.set $total (f64.add (local.get $total) (local.get $sum)))
        (local.set $zeros (f64.add (local.get $zeros) (f64.convert_i32_u (local.get $blockZeros))))
        (local.set $subnormal (f64.add (local.get $subnormal) (f64.convert_i32_u (i32.sub (local.get $blockTiny) (local.get $blockZeros)))))
        (local.set $at (local.get $end))
        (br $blocks)))
    (f64.store (i32.const 9472) (f64.promote_f32 (local.get $min)))
    (f64.store (i32.const 9480) (f64.promote_f32 (local.get $max)))
    (f64.store (i32.const 9488) (local.get $total))
    (f64.store (i32.const 9496) (local.get $zeros))
    (f64.store (i32.const 9504) (local.get $subnormal))
    (local.get $at))

  ;; countTiny32 for float64 values, a multiple of 2.
  (func $countTiny64 (param $p i32) (param $from i32) (param $to i32) (param $tiny v128) (result i64 i64)
    (local $v v128) (local $zeroLanes v128) (local $tinyLanes v128)
    (block $done
      (loop $vector
        (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
        (local.set $v (v128.load align=8 (i32.add (local.get $p) (i32.shl (local.get $from) (i32.const 3)))))
        (local.set $zeroLanes (i64x2.sub (local.get $zeroLanes) (f64x2.eq (local.get $v) (v128.const f64x2 0 0))))
        (local.set $tinyLanes (i64x2.sub (local.get $tinyLanes) (f64x2.lt (f64x2.abs (local.get $v)) (local.get $tiny))))
        (local.set $from (i32.add (local.get $from) (i32.const 2)))
        (br $vector)))
    (i64.add (i64x2.extract_lane 0 (local.get $zeroLanes)) (i64x2.extract_lane 1 (local.get $zeroLanes)))
    (i64.add (i64x2.extract_lane 0 (local.get $tinyLanes)) (i64x2.extract_lane 1 (local.get $tinyLanes))))

  ;; range32 for float64 values: four a turn, in two lanes of each sum, min and max.
  (func (export "range64") (param $p i32) (param $n i32) (param $tiny f64) (param $min f64) (param $max f64) (result i32)
    (local $total f64)
    (local $at i32) (local $end i32) (local $i i32) (local $address i32)
    (local $blockMin f64) (local $blockMax f64) (local $x f64)
    (local $sum f64) (local $zeros f64) (local $subnormal f64) (local $blockZeros i64) (local $blockTiny i64)
    (local $v v128) (local $w v128) (local $vMin v128) (local $wMin v128) (local $vMax v128) (local $wMax v128)
    (local $s0 v128) (local $s1 v128) (local $vAbsMin v128) (local $wAbsMin v128) (local $tinySplat v128)
    (local.set $tinySplat (f64x2.splat (local.get $tiny)))
    (block $stop
      (loop $blocks
        (br_if $stop (i32.ge_u (local.get $at) (local.get $n)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (if (i32.gt_u (local.get $end) (local.get $n)) (then (local.set $end (local.get $n))))
        (local.set $vMin (f64x2.splat (local.get $min)))
        (local.set $wMin (local.get $vMin))
        (local.set $vMax (f64x2.splat (local.get $max)))
        (local.set $wMax (local.get $vMax))
        (local.set $s0 (v128.const i64x2 0 0))
        (local.set $s1 (v128.const i64x2 0 0))
        (local.set $vAbsMin (v128.const f64x2 inf inf))
        (local.set $wAbsMin (local.get $vAbsMin))
        (local.set $i (local.get $at))
        (block $vectorDone
          (loop $vector
            (br_if $vectorDone (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
            (local.set $address (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3))))
            (local.set $v (v128.load align=8 (local.get $address)))
            (local.set $w (v128.load offset=16 align=8 (local.get $address)))
            (local.set $s0 (f64x2.add (local.get $s0) (local.get $v)))
            (local.set $s1 (f64x2.add (local.get $s1) (local.get $w)))
            (local.set $vMin (f64x2.pmin (local.get $vMin) (local.get $v)))
            (local.set $wMin (f64x2.pmin (local.get $wMin) (local.get $w)))
            (local.set $vMax (f64x2.pmax (local.get $vMax) (local.get $v)))
            (local.set $wMax (f64x2.pmax (local.get $wMax) (local.get $w)))
            (local.set $vAbsMin (f64x2.pmin (local.get $vAbsMin) (f64x2.abs (local.get $v))))
            (local.set $wAbsMin (f64x2.pmin (local.get $wAbsMin) (f64x2.abs (local.get $w))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $vector)))
        (local.set $sum (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0)))
          (f64.add (f64x2.extract_lane 0 (local.get $s1)) (f64x2.extract_lane 1 (local.get $s1)))))
        (local.set $vMin (f64x2.pmin (local.get $vMin) (local.get $wMin)))
        (local.set $vMax (f64x2.pmax (local.get $vMax) (local.get $wMax)))
        (local.set $blockMin (f64.min (f64x2.extract_lane 0 (local.get $vMin)) (f64x2.extract_lane 1 (local.get $vMin))))
        (local.set $blockMax (f64.max (f64x2.extract_lane 0 (local.get $vMax)) (f64x2.extract_lane 1 (local.get $vMax))))
        (local.set $blockZeros (i64.const 0))
        (local.set $blockTiny (i64.const 0))
        (if (v128.any_true (f64x2.lt (f64x2.pmin (local.get $vAbsMin) (local.get $wAbsMin)) (local.get $tinySplat)))
          (then
            (call $countTiny64 (local.get $p) (local.get $at) (local.get $i) (local.get $tinySplat))
            (local.set $blockTiny)
            (local.set $blockZeros)))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $x (f64.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))))
            (local.set $sum (f64.add (local.get $sum) (local.get $x)))
            (local.set $blockMin (select (local.get $x) (local.get $blockMin) (f64.lt (local.get $x) (local.get $blockMin))))
            (local.set $blockMax (select (local.get $x) (local.get $blockMax) (f64.gt (local.get $x) (local.get $blockMax))))
            (local.set $blockZeros (i64.add (local.get $blockZeros) (i64.extend_i32_u (f64.eq (local.get $x) (f64.const 0)))))
            (local.set $blockTiny (i64.add (local.get $blockTiny) (i64.extend_i32_u (f64.lt (f64.abs (local.get $x)) (local.get $tiny)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        (br_if $stop (f64.ne (f64.sub (local.get $sum) (local.get $sum)) (f64.const 0)))
        (if (f64.lt (local.get $blockMin) (local.get $min))
          (then (local.set $min (if (result f64) (f64.eq (local.get $blockMin) (f64.const 0))
            (then (call $firstZero64 (local.get $p) (local.get $at) (local.get $end)))
            (else (local.get $blockMin))))))
        (if (f64.gt (local.get $blockMax) (local.get $max))
          (then (local.set $max (if (result f64) (f64.eq (local.get $blockMax) (f64.const 0))
            (then (call $firstZero64 (local.get $p) (local.get $at) (local.get $end)))
            (else (local.get $blockMax))))))
        (local.set $total (f64.add (local.get $total) (local.get $sum)))
        (local.set $zeros (f64.add (local.get $zeros) (f64.convert_i64_u (local.get $blockZeros))))
        (local.set $subnormal (f64.add (local.get $subnormal) (f64.convert_i64_u (i64.sub (local.get $blockTiny) (local.get $blockZeros)))))
        (local.set $at (local.get $end))
        (br $blocks)))
    (f64.store (i32.const 9472) (local.get $min))
    (f64.store (i32.const 9480) (local.get $max))
    (f64.store (i32.const 9488) (local.get $total))
    (f64.store (i32.const 9496) (local.get $zeros))
    (f64.store (i32.const 9504) (local.get $subnormal))
    (local.get $at))

  ;; Counts one value at bin $bin (clamped to 32, the bin of the largest values) in the table of single values.
  (func $countOne (param $bin i32)
    (local $counter i32)
    (local.set $counter (i32.add (i32.const 9216)
      (i32.shl (select (local.get $bin) (i32.const 32) (i32.le_u (local.get $bin) (i32.const 32))) (i32.const 2))))
    (i32.store (local.get $counter) (i32.add (i32.load (local.get $counter)) (i32.const 1))))

  ;; Pass 2 over $n float32 values at $p: returns their squared deviations from $mean (the blocks'
  ;; sums, in order), and counts their bins in the tables at 0.
  (func (export "spread32") (param $p i32) (param $n i32) (param $mean f64) (param $min f64) (param $scale f64) (result f64)
    (local $squares f64)
    (local $at i32) (local $end i32) (local $i i32) (local $x f64) (local $d f64) (local $blockSquares f64)
    (local $v v128) (local $lo v128) (local $hi v128) (local $dv v128) (local $q0 v128) (local $q1 v128)
    (local $meanSplat v128) (local $minSplat v128) (local $scaleSplat v128) (local $counters v128) (local $counter i32)
    (local.set $meanSplat (f64x2.splat (local.get $mean)))
    (local.set $minSplat (f64x2.splat (local.get $min)))
    (local.set $scaleSplat (f64x2.splat (local.get $scale)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $at) (local.get $n)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (if (i32.gt_u (local.get $end) (local.get $n)) (then (local.set $end (local.get $n))))
        (local.set $q0 (v128.const i64x2 0 0))
        (local.set $q1 (v128.const i64x2 0 0))
        (local.set $i (local.get $at))
        (block $vectorDone
          (loop $vector
            (br_if $vectorDone (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
            (local.set $v (v128.load align=4 (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
            (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
            (local.set $dv (f64x2.sub (local.get $lo) (local.get $meanSplat)))
            (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $dv) (local.get $dv))))
            (local.set $dv (f64x2.sub (local.get $hi) (local.get $meanSplat)))
            (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $dv) (local.get $dv))))
            ;; Bins trunc((v - min) * scale) of the four values, clamped to 32: b0 b1 b2 b3. The
            ;; positions are finite and ≥ 0 (see the file's head): floored and added to 2^52, a
            ;; double holds the integer in its low 32 bits.
            (local.set $counters (i32x4.min_u (v128.const i32x4 32 32 32 32) (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
              (f64x2.add (f64x2.floor (f64x2.mul (f64x2.sub (local.get $lo) (local.get $minSplat)) (local.get $scaleSplat))) (v128.const f64x2 0x1p52 0x1p52))
              (f64x2.add (f64x2.floor (f64x2.mul (f64x2.sub (local.get $hi) (local.get $minSplat)) (local.get $scaleSplat))) (v128.const f64x2 0x1p52 0x1p52)))))
            ;; One count per pair: b0·33 + b1 in the first table, b2·33 + b3 in the second (byte offsets in lanes 0 and 2).
            (local.set $counters (i32x4.mul (local.get $counters) (v128.const i32x4 132 4 132 4)))
            (local.set $counters (i32x4.add (i32x4.add (local.get $counters) (v128.const i32x4 0 0 4608 0))
              (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $counters) (local.get $counters))))
            (local.set $counter (i32x4.extract_lane 0 (local.get $counters)))
            (i32.store (local.get $counter) (i32.add (i32.load (local.get $counter)) (i32.const 1)))
            (local.set $counter (i32x4.extract_lane 2 (local.get $counters)))
            (i32.store (local.get $counter) (i32.add (i32.load (local.get $counter)) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $vector)))
        (local.set $blockSquares (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $q0)) (f64x2.extract_lane 1 (local.get $q0)))
          (f64.add (f64x2.extract_lane 0 (local.get $q1)) (f64x2.extract_lane 1 (local.get $q1)))))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $x (f64.promote_f32 (f32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))))
            (local.set $d (f64.sub (local.get $x) (local.get $mean)))
            (local.set $blockSquares (f64.add (local.get $blockSquares) (f64.mul (local.get $d) (local.get $d))))
            (call $countOne (i32.trunc_sat_f64_s (f64.mul (f64.sub (local.get $x) (local.get $min)) (local.get $scale))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        (local.set $squares (f64.add (local.get $squares) (local.get $blockSquares)))
        (local.set $at (local.get $end))
        (br $blocks)))
    (local.get $squares))

  ;; spread32 for float64 values.
  (func (export "spread64") (param $p i32) (param $n i32) (param $mean f64) (param $min f64) (param $scale f64) (result f64)
    (local $squares f64)
    (local $at i32) (local $end i32) (local $i i32) (local $address i32) (local $x f64) (local $d f64) (local $blockSquares f64)
    (local $v v128) (local $w v128) (local $dv v128) (local $q0 v128) (local $q1 v128)
    (local $meanSplat v128) (local $minSplat v128) (local $scaleSplat v128) (local $counters v128) (local $counter i32)
    (local.set $meanSplat (f64x2.splat (local.get $mean)))
    (local.set $minSplat (f64x2.splat (local.get $min)))
    (local.set $scaleSplat (f64x2.splat (local.get $scale)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $at) (local.get $n)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (if (i32.gt_u (local.get $end) (local.get $n)) (then (local.set $end (local.get $n))))
        (local.set $q0 (v128.const i64x2 0 0))
        (local.set $q1 (v128.const i64x2 0 0))
        (local.set $i (local.get $at))
        (block $vectorDone
          (loop $vector
            (br_if $vectorDone (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
            (local.set $address (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3))))
            (local.set $v (v128.load align=8 (local.get $address)))
            (local.set $w (v128.load offset=16 align=8 (local.get $address)))
            (local.set $dv (f64x2.sub (local.get $v) (local.get $meanSplat)))
            (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $dv) (local.get $dv))))
            (local.set $dv (f64x2.sub (local.get $w) (local.get $meanSplat)))
            (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $dv) (local.get $dv))))
            ;; Bins trunc((v - min) * scale) of the four values, clamped to 32: b0 b1 b2 b3. The
            ;; positions are finite and ≥ 0 (see the file's head): floored and added to 2^52, a
            ;; double holds the integer in its low 32 bits.
            (local.set $counters (i32x4.min_u (v128.const i32x4 32 32 32 32) (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
              (f64x2.add (f64x2.floor (f64x2.mul (f64x2.sub (local.get $v) (local.get $minSplat)) (local.get $scaleSplat))) (v128.const f64x2 0x1p52 0x1p52))
              (f64x2.add (f64x2.floor (f64x2.mul (f64x2.sub (local.get $w) (local.get $minSplat)) (local.get $scaleSplat))) (v128.const f64x2 0x1p52 0x1p52)))))
            ;; One count per pair: b0·33 + b1 in the first table, b2·33 + b3 in the second (byte offsets in lanes 0 and 2).
            (local.set $counters (i32x4.mul (local.get $counters) (v128.const i32x4 132 4 132 4)))
            (local.set $counters (i32x4.add (i32x4.add (local.get $counters) (v128.const i32x4 0 0 4608 0))
              (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $counters) (local.get $counters))))
            (local.set $counter (i32x4.extract_lane 0 (local.get $counters)))
            (i32.store (local.get $counter) (i32.add (i32.load (local.get $counter)) (i32.const 1)))
            (local.set $counter (i32x4.extract_lane 2 (local.get $counters)))
            (i32.store (local.get $counter) (i32.add (i32.load (local.get $counter)) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $vector)))
        (local.set $blockSquares (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $q0)) (f64x2.extract_lane 1 (local.get $q0)))
          (f64.add (f64x2.extract_lane 0 (local.get $q1)) (f64x2.extract_lane 1 (local.get $q1)))))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $x (f64.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))))
            (local.set $d (f64.sub (local.get $x) (local.get $mean)))
            (local.set $blockSquares (f64.add (local.get $blockSquares) (f64.mul (local.get $d) (local.get $d))))
            (call $countOne (i32.trunc_sat_f64_s (f64.mul (f64.sub (local.get $x) (local.get $min)) (local.get $scale))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        (local.set $squares (f64.add (local.get $squares) (local.get $blockSquares)))
        (local.set $at (local.get $end))
        (br $blocks)))
    (local.get $squares))

  ;; Compares $n float32 pairs at $a and $b (src/ops/value-stats.ts), adding to the running
  ;; accumulators at 9536 (max |a - b|, sum |a - b|, a·b, a·a, b·b, pairs outside the tolerance):
  ;; per block, each sum reduced on its own and added in order. Returns the pairs done: $n, or the
  ;; start of the first block where |a - b| is NaN somewhere (left to the caller, which counts NaN
  ;; pairs its own way).
  (func (export "compare32") (param $a i32) (param $b i32) (param $n i32) (param $atol f64) (param $rtol f64) (result i32)
    (local $at i32) (local $end i32) (local $i i32) (local $offset i32)
    (local $maxAbs f64) (local $sumAbs f64) (local $dot f64) (local $normA f64) (local $normB f64) (local $outside f64)
    (local $blockSum f64) (local $blockDot f64) (local $blockNormA f64) (local $blockNormB f64) (local $blockMax f64) (local $blockOutside i64)
    (local $xs f64) (local $ys f64) (local $ds f64)
    (local $va v128) (local $vb v128) (local $x v128) (local $y v128) (local $d v128)
    (local $dotLo v128) (local $dotHi v128) (local $normALo v128) (local $normAHi v128) (local $normBLo v128) (local $normBHi v128)
    (local $sumLo v128) (local $sumHi v128) (local $maxLanes v128) (local $outsideLanes v128)
    (local $atolSplat v128) (local $rtolSplat v128)
    (local.set $atolSplat (f64x2.splat (local.get $atol)))
    (local.set $rtolSplat (f64x2.splat (local.get $rtol)))
    (local.set $maxAbs (f64.load (i32.const 9536)))
    (local.set $sumAbs (f64.load (i32.const 9544)))
    (local.set $dot (f64.load (i32.const 9552)))
    (local.set $normA (f64.load (i32.const 9560)))
    (local.set $normB (f64.load (i32.const 9568)))
    (local.set $outside (f64.load (i32.const 9576)))
    (block $stop
      (loop $blocks
        (br_if $stop (i32.ge_u (local.get $at) (local.get $n)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (if (i32.gt_u (local.get $end) (local.get $n)) (then (local.set $end (local.get $n))))
        (local.set $dotLo (v128.const i64x2 0 0))
        (local.set $dotHi (v128.const i64x2 0 0))
        (local.set $normALo (v128.const i64x2 0 0))
        (local.set $normAHi (v128.const i64x2 0 0))
        (local.set $normBLo (v128.const i64x2 0 0))
        (local.set $normBHi (v128.const i64x2 0 0))
        (local.set $sumLo (v128.const i64x2 0 0))
        (local.set $sumHi (v128.const i64x2 0 0))
        (local.set $maxLanes (f64x2.splat (local.get $maxAbs)))
        (local.set $outsideLanes (v128.const i64x2 0 0))
        (local.set $i (local.get $at))
        (block $vectorDone
          (loop $vector
            (br_if $vectorDone (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
            (local.set $offset (i32.shl (local.get $i) (i32.const 2)))
            (local.set $va (v128.load align=4 (i32.add (local.get $a) (local.get $offset))))
            (local.set $vb (v128.load align=4 (i32.add (local.get $b) (local.get $offset))))
            (local.set $x (f64x2.promote_low_f32x4 (local.get $va)))
            (local.set $y (f64x2.promote_low_f32x4 (local.get $vb)))
            (local.set $dotLo (f64x2.add (local.get $dotLo) (f64x2.mul (local.get $x) (local.get $y))))
            (local.set $normALo (f64x2.add (local.get $normALo) (f64x2.mul (local.get $x) (local.get $x))))
            (local.set $normBLo (f64x2.add (local.get $normBLo) (f64x2.mul (local.get $y) (local.get $y))))
            (local.set $d (f64x2.abs (f64x2.sub (local.get $x) (local.get $y))))
            (local.set $sumLo (f64x2.add (local.get $sumLo) (local.get $d)))
            (local.set $maxLanes (f64x2.pmax (local.get $maxLanes) (local.get $d)))
            ;; Outside the tolerance: d > atol + rtol·|y|, or d infinite (whatever the tolerance).
            (local.set $outsideLanes (i64x2.sub (local.get $outsideLanes) (v128.or
              (f64x2.gt (local.get $d) (f64x2.add (local.get $atolSplat) (f64x2.mul (local.get $rtolSplat) (f64x2.abs (local.get $y)))))
              (f64x2.eq (local.get $d) (v128.const f64x2 inf inf)))))
            (local.set $x (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $va) (local.get $va))))
            (local.set $y (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $vb) (local.get $vb))))
            (local.set $dotHi (f64x2.add (local.get $dotHi) (f64x2.mul (local.get $x) (local.get $y))))
            (local.set $normAHi (f64x2.add (local.get $normAHi) (f64x2.mul (local.get $x) (local.get $x))))
            (local.set $normBHi (f64x2.add (local.get $normBHi) (f64x2.mul (local.get $y) (local.get $y))))
            (local.set $d (f64x2.abs (f64x2.sub (local.get $x) (local.get $y))))
            (local.set $sumHi (f64x2.add (local.get $sumHi) (local.get $d)))
            (local.set $maxLanes (f64x2.pmax (local.get $maxLanes) (local.get $d)))
            ;; Outside the tolerance: d > atol + rtol·|y|, or d infinite (whatever the tolerance).
            (local.set $outsideLanes (i64x2.sub (local.get $outsideLanes) (v128.or
              (f64x2.gt (local.get $d) (f64x2.add (local.get $atolSplat) (f64x2.mul (local.get $rtolSplat) (f64x2.abs (local.get $y)))))
              (f64x2.eq (local.get $d) (v128.const f64x2 inf inf)))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $vector)))
        (local.set $blockDot (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $dotLo)) (f64x2.extract_lane 1 (local.get $dotLo)))
          (f64.add (f64x2.extract_lane 0 (local.get $dotHi)) (f64x2.extract_lane 1 (local.get $dotHi)))))
        (local.set $blockNormA (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $normALo)) (f64x2.extract_lane 1 (local.get $normALo)))
          (f64.add (f64x2.extract_lane 0 (local.get $normAHi)) (f64x2.extract_lane 1 (local.get $normAHi)))))
        (local.set $blockNormB (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $normBLo)) (f64x2.extract_lane 1 (local.get $normBLo)))
          (f64.add (f64x2.extract_lane 0 (local.get $normBHi)) (f64x2.extract_lane 1 (local.get $normBHi)))))
        (local.set $blockSum (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $sumLo)) (f64x2.extract_lane 1 (local.get $sumLo)))
          (f64.add (f64x2.extract_lane 0 (local.get $sumHi)) (f64x2.extract_lane 1 (local.get $sumHi)))))
        (local.set $blockMax (f64.max (f64x2.extract_lane 0 (local.get $maxLanes)) (f64x2.extract_lane 1 (local.get $maxLanes))))
        (local.set $blockOutside (i64.add (i64x2.extract_lane 0 (local.get $outsideLanes)) (i64x2.extract_lane 1 (local.get $outsideLanes))))
        ;; The last pairs of a block that is not a multiple of four, one by one.
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $xs (f64.promote_f32 (f32.load (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 2))))))
            (local.set $ys (f64.promote_f32 (f32.load (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 2))))))
            (local.set $blockDot (f64.add (local.get $blockDot) (f64.mul (local.get $xs) (local.get $ys))))
            (local.set $blockNormA (f64.add (local.get $blockNormA) (f64.mul (local.get $xs) (local.get $xs))))
            (local.set $blockNormB (f64.add (local.get $blockNormB) (f64.mul (local.get $ys) (local.get $ys))))
            (local.set $ds (f64.abs (f64.sub (local.get $xs) (local.get $ys))))
            (local.set $blockSum (f64.add (local.get $blockSum) (local.get $ds)))
            (local.set $blockMax (select (local.get $ds) (local.get $blockMax) (f64.gt (local.get $ds) (local.get $blockMax))))
            (local.set $blockOutside (i64.add (local.get $blockOutside) (i64.extend_i32_u (i32.or
              (f64.gt (local.get $ds) (f64.add (local.get $atol) (f64.mul (local.get $rtol) (f64.abs (local.get $ys)))))
              (f64.eq (local.get $ds) (f64.const inf))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        ;; NaN in a pair makes |a - b| NaN: leave this block to the caller.
        (br_if $stop (f64.ne (local.get $blockSum) (local.get $blockSum)))
        (local.set $maxAbs (local.get $blockMax))
        (local.set $sumAbs (f64.add (local.get $sumAbs) (local.get $blockSum)))
        (local.set $dot (f64.add (local.get $dot) (local.get $blockDot)))
        (local.set $normA (f64.add (local.get $normA) (local.get $blockNormA)))
        (local.set $normB (f64.add (local.get $normB) (local.get $blockNormB)))
        (local.set $outside (f64.add (local.get $outside) (f64.convert_i64_u (local.get $blockOutside))))
        (local.set $at (local.get $end))
        (br $blocks)))
    (f64.store (i32.const 9536) (local.get $maxAbs))
    (f64.store (i32.const 9544) (local.get $sumAbs))
    (f64.store (i32.const 9552) (local.get $dot))
    (f64.store (i32.const 9560) (local.get $normA))
    (f64.store (i32.const 9568) (local.get $normB))
    (f64.store (i32.const 9576) (local.get $outside))
    (local.get $at))

  ;; compare32 for float64 pairs: four a turn, two from each of two loads.
  (func (export "compare64") (param $a i32) (param $b i32) (param $n i32) (param $atol f64) (param $rtol f64) (result i32)
    (local $at i32) (local $end i32) (local $i i32) (local $offset i32)
    (local $maxAbs f64) (local $sumAbs f64) (local $dot f64) (local $normA f64) (local $normB f64) (local $outside f64)
    (local $blockSum f64) (local $blockDot f64) (local $blockNormA f64) (local $blockNormB f64) (local $blockMax f64) (local $blockOutside i64)
    (local $xs f64) (local $ys f64) (local $ds f64)
    (local $va v128) (local $vb v128) (local $x v128) (local $y v128) (local $d v128)
    (local $dotLo v128) (local $dotHi v128) (local $normALo v128) (local $normAHi v128) (local $normBLo v128) (local $normBHi v128)
    (local $sumLo v128) (local $sumHi v128) (local $maxLanes v128) (local $outsideLanes v128)
    (local $atolSplat v128) (local $rtolSplat v128)
    (local.set $atolSplat (f64x2.splat (local.get $atol)))
    (local.set $rtolSplat (f64x2.splat (local.get $rtol)))
    (local.set $maxAbs (f64.load (i32.const 9536)))
    (local.set $sumAbs (f64.load (i32.const 9544)))
    (local.set $dot (f64.load (i32.const 9552)))
    (local.set $normA (f64.load (i32.const 9560)))
    (local.set $normB (f64.load (i32.const 9568)))
    (local.set $outside (f64.load (i32.const 9576)))
    (block $stop
      (loop $blocks
        (br_if $stop (i32.ge_u (local.get $at) (local.get $n)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (if (i32.gt_u (local.get $end) (local.get $n)) (then (local.set $end (local.get $n))))
        (local.set $dotLo (v128.const i64x2 0 0))
        (local.set $dotHi (v128.const i64x2 0 0))
        (local.set $normALo (v128.const i64x2 0 0))
        (local.set $normAHi (v128.const i64x2 0 0))
        (local.set $normBLo (v128.const i64x2 0 0))
        (local.set $normBHi (v128.const i64x2 0 0))
        (local.set $sumLo (v128.const i64x2 0 0))
        (local.set $sumHi (v128.const i64x2 0 0))
        (local.set $maxLanes (f64x2.splat (local.get $maxAbs)))
        (local.set $outsideLanes (v128.const i64x2 0 0))
        (local.set $i (local.get $at))
        (block $vectorDone
          (loop $vector
            (br_if $vectorDone (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
            (local.set $offset (i32.shl (local.get $i) (i32.const 3)))
            (local.set $x (v128.load align=8 (i32.add (local.get $a) (local.get $offset))))
            (local.set $y (v128.load align=8 (i32.add (local.get $b) (local.get $offset))))
            (local.set $dotLo (f64x2.add (local.get $dotLo) (f64x2.mul (local.get $x) (local.get $y))))
            (local.set $normALo (f64x2.add (local.get $normALo) (f64x2.mul (local.get $x) (local.get $x))))
            (local.set $normBLo (f64x2.add (local.get $normBLo) (f64x2.mul (local.get $y) (local.get $y))))
            (local.set $d (f64x2.abs (f64x2.sub (local.get $x) (local.get $y))))
            (local.set $sumLo (f64x2.add (local.get $sumLo) (local.get $d)))
            (local.set $maxLanes (f64x2.pmax (local.get $maxLanes) (local.get $d)))
            ;; Outside the tolerance: d > atol + rtol·|y|, or d infinite (whatever the tolerance).
            (local.set $outsideLanes (i64x2.sub (local.get $outsideLanes) (v128.or
              (f64x2.gt (local.get $d) (f64x2.add (local.get $atolSplat) (f64x2.mul (local.get $rtolSplat) (f64x2.abs (local.get $y)))))
              (f64x2.eq (local.get $d) (v128.const f64x2 inf inf)))))
            (local.set $x (v128.load offset=16 align=8 (i32.add (local.get $a) (local.get $offset))))
            (local.set $y (v128.load offset=16 align=8 (i32.add (local.get $b) (local.get $offset))))
            (local.set $dotHi (f64x2.add (local.get $dotHi) (f64x2.mul (local.get $x) (local.get $y))))
            (local.set $normAHi (f64x2.add (local.get $normAHi) (f64x2.mul (local.get $x) (local.get $x))))
            (local.set $normBHi (f64x2.add (local.get $normBHi) (f64x2.mul (local.get $y) (local.get $y))))
            (local.set $d (f64x2.abs (f64x2.sub (local.get $x) (local.get $y))))
            (local.set $sumHi (f64x2.add (local.get $sumHi) (local.get $d)))
            (local.set $maxLanes (f64x2.pmax (local.get $maxLanes) (local.get $d)))
            ;; Outside the tolerance: d > atol + rtol·|y|, or d infinite (whatever the tolerance).
            (local.set $outsideLanes (i64x2.sub (local.get $outsideLanes) (v128.or
              (f64x2.gt (local.get $d) (f64x2.add (local.get $atolSplat) (f64x2.mul (local.get $rtolSplat) (f64x2.abs (local.get $y)))))
              (f64x2.eq (local.get $d) (v128.const f64x2 inf inf)))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $vector)))
        (local.set $blockDot (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $dotLo)) (f64x2.extract_lane 1 (local.get $dotLo)))
          (f64.add (f64x2.extract_lane 0 (local.get $dotHi)) (f64x2.extract_lane 1 (local.get $dotHi)))))
        (local.set $blockNormA (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $normALo)) (f64x2.extract_lane 1 (local.get $normALo)))
          (f64.add (f64x2.extract_lane 0 (local.get $normAHi)) (f64x2.extract_lane 1 (local.get $normAHi)))))
        (local.set $blockNormB (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $normBLo)) (f64x2.extract_lane 1 (local.get $normBLo)))
          (f64.add (f64x2.extract_lane 0 (local.get $normBHi)) (f64x2.extract_lane 1 (local.get $normBHi)))))
        (local.set $blockSum (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $sumLo)) (f64x2.extract_lane 1 (local.get $sumLo)))
          (f64.add (f64x2.extract_lane 0 (local.get $sumHi)) (f64x2.extract_lane 1 (local.get $sumHi)))))
        (local.set $blockMax (f64.max (f64x2.extract_lane 0 (local.get $maxLanes)) (f64x2.extract_lane 1 (local.get $maxLanes))))
        (local.set $blockOutside (i64.add (i64x2.extract_lane 0 (local.get $outsideLanes)) (i64x2.extract_lane 1 (local.get $outsideLanes))))
        ;; The last pairs of a block that is not a multiple of four, one by one.
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $xs (f64.load (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 3)))))
            (local.set $ys (f64.load (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 3)))))
            (local.set $blockDot (f64.add (local.get $blockDot) (f64.mul (local.get $xs) (local.get $ys))))
            (local.set $blockNormA (f64.add (local.get $blockNormA) (f64.mul (local.get $xs) (local.get $xs))))
            (local.set $blockNormB (f64.add (local.get $blockNormB) (f64.mul (local.get $ys) (local.get $ys))))
            (local.set $ds (f64.abs (f64.sub (local.get $xs) (local.get $ys))))
            (local.set $blockSum (f64.add (local.get $blockSum) (local.get $ds)))
            (local.set $blockMax (select (local.get $ds) (local.get $blockMax) (f64.gt (local.get $ds) (local.get $blockMax))))
            (local.set $blockOutside (i64.add (local.get $blockOutside) (i64.extend_i32_u (i32.or
              (f64.gt (local.get $ds) (f64.add (local.get $atol) (f64.mul (local.get $rtol) (f64.abs (local.get $ys)))))
              (f64.eq (local.get $ds) (f64.const inf))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        ;; NaN in a pair makes |a - b| NaN: leave this block to the caller.
        (br_if $stop (f64.ne (local.get $blockSum) (local.get $blockSum)))
        (local.set $maxAbs (local.get $blockMax))
        (local.set $sumAbs (f64.add (local.get $sumAbs) (local.get $blockSum)))
        (local.set $dot (f64.add (local.get $dot) (local.get $blockDot)))
        (local.set $normA (f64.add (local.get $normA) (local.get $blockNormA)))
        (local.set $normB (f64.add (local.get $normB) (local.get $blockNormB)))
        (local.set $outside (f64.add (local.get $outside) (f64.convert_i64_u (local.get $blockOutside))))
        (local.set $at (local.get $end))
        (br $blocks)))
    (f64.store (i32.const 9536) (local.get $maxAbs))
    (f64.store (i32.const 9544) (local.get $sumAbs))
    (f64.store (i32.const 9552) (local.get $dot))
    (f64.store (i32.const 9560) (local.get $normA))
    (f64.store (i32.const 9568) (local.get $normB))
    (f64.store (i32.const 9576) (local.get $outside))
    (local.get $at))
)

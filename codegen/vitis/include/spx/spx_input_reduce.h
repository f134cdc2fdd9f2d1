// spx.input_reduce: keep the first n_max active pixels of a dense image, in raster order.
//
// Pixel p is active iff any channel is > threshold (channel0_only, the `activity = "channel0"`
// variant: iff channel 0 is, as sparsepixels), compared on raw integers: raw > threshold_raw
// (spx_ir.fixed.threshold_raw: equal to `value > threshold` for every input value, "always" and
// "never" included). Slot k holds the k-th active pixel: its features
// and hash (h+1, w+1); slots past the last active pixel stay empty (hash (0,0), features 0).
//
// Two hardware structures (the op's `search` schedule property, spx_ir.schedule), same result:
//  input_reduce_tree (default, as the published SparsePixels designs): an activity mask of H*W
//    flags (partitioned: every flag is a register), then n_max iterations of a pipelined loop, each
//    a balanced binary tree (first_set: depth ceil(log2(H*W)), the left part the largest power of
//    two below the width) finding the leftmost still-active pixel, which is then cleared.
//    pixel_parallel = P unrolls P chained searches into one iteration (P trees; no shorter chain).
//    Expected latency = II ~ (n_max / P) * (cycles of P chained trees) + 2; LUTs ~ P * H*W*C*width.
//  input_reduce_stream: a raster scan, one pixel per clock (pipelined, II 1), writing the next free
//    slot; the fewest LUTs (one comparator per channel and an n_max-way slot decoder).
//    Expected latency = II ~ H*W + 2; pixel_parallel does not apply.
// Every array read at a variable index (the image, by the found pixel) comes partitioned from the
// top function; the hash row/column is a division by the constant width.
#ifndef SPX_INPUT_REDUCE_H_
#define SPX_INPUT_REDUCE_H_

#include "spx_common.h"

namespace spx {

// Fields of a layer config: height, width, n_chan, n_max (unsigned), threshold_raw (long long:
// spx_ir.fixed.threshold_raw of the op's threshold, may lie one below the input type's range),
// pixel_parallel (unsigned), channel0_only (bool).
struct input_reduce_config {};

// Largest power of two strictly below n (n >= 2).
constexpr unsigned pow2_below(unsigned n) { return n <= 2 ? 1 : 2 * pow2_below((n + 1) / 2); }

// Index of the leftmost set flag of a[0..N), N if none: a balanced tree of 2:1 selections.
template <unsigned N> struct first_set {
    static const unsigned L = pow2_below(N);
    static unsigned find(const bool a[N]) {
        #pragma HLS INLINE
        const unsigned left = first_set<L>::find(a);
        return left < L ? left : L + first_set<N - L>::find(a + L);
    }
};

template <> struct first_set<1> {
    static unsigned find(const bool a[1]) { return a[0] ? 0 : 1; }
};

template <class data_T, typename CONFIG_T> bool pixel_active(const data_T x[], unsigned p) {
    #pragma HLS INLINE
    bool any = false;
    for (unsigned c = 0; c < (CONFIG_T::channel0_only ? 1 : CONFIG_T::n_chan); c++) {
        #pragma HLS UNROLL
        any = any || to_raw(x[p * CONFIG_T::n_chan + c]) > CONFIG_T::threshold_raw;
    }
    return any;
}

template <class data_T, class feat_T, class hash_T, typename CONFIG_T>
void input_reduce_tree(const data_T x[CONFIG_T::height * CONFIG_T::width * CONFIG_T::n_chan],
                       feat_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], hash_T hash[CONFIG_T::n_max * 2]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    const unsigned n_pixels = CONFIG_T::height * CONFIG_T::width;
    bool active[n_pixels];
    #pragma HLS ARRAY_PARTITION variable=active complete
    for (unsigned p = 0; p < n_pixels; p++) {
        #pragma HLS UNROLL
        active[p] = pixel_active<data_T, CONFIG_T>(x, p);
    }
    for (unsigned k = 0; k < CONFIG_T::n_max; k++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        const unsigned first = first_set<n_pixels>::find(active);
        const bool found = first < n_pixels;
        if (found) active[first] = false;
        hash[2 * k] = found ? first / CONFIG_T::width + 1 : 0;
        hash[2 * k + 1] = found ? first % CONFIG_T::width + 1 : 0;
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            feat[k * CONFIG_T::n_chan + c] = found ? feat_T(x[first * CONFIG_T::n_chan + c]) : from_raw<feat_T>(0);
        }
    }
}

template <class data_T, class feat_T, class hash_T, typename CONFIG_T>
void input_reduce_stream(const data_T x[CONFIG_T::height * CONFIG_T::width * CONFIG_T::n_chan],
                         feat_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], hash_T hash[CONFIG_T::n_max * 2]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);  // not used by the scan, but set
    for (unsigned k = 0; k < CONFIG_T::n_max; k++) {
        #pragma HLS UNROLL
        hash[2 * k] = 0;
        hash[2 * k + 1] = 0;
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            feat[k * CONFIG_T::n_chan + c] = from_raw<feat_T>(0);
        }
    }
    unsigned filled = 0, row = 0, col = 0;
    for (unsigned p = 0; p < CONFIG_T::height * CONFIG_T::width; p++) {
        #pragma HLS PIPELINE II=1
        if (filled < CONFIG_T::n_max && pixel_active<data_T, CONFIG_T>(x, p)) {
            hash[2 * filled] = row + 1;
            hash[2 * filled + 1] = col + 1;
            for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                #pragma HLS UNROLL
                feat[filled * CONFIG_T::n_chan + c] = feat_T(x[p * CONFIG_T::n_chan + c]);
            }
            filled++;
        }
        const bool wrap = col == CONFIG_T::width - 1;
        col = wrap ? 0 : col + 1;
        row = wrap ? row + 1 : row;
    }
}

}  // namespace spx

#endif

// spx.quantize / spx.sparse_quantize: every element quantized by its own (k, i, f) (HGQ2 quantizers).
//
// Element e (sparse: slot s, channel c -> the table entry of its pixel (h_s - 1, w_s - 1, c)):
// round to 2^-f by the quantization mode Q, then into [k ? -2^i : 0, 2^i - 2^-f] by the overflow mode
// (SAT clamps, SAT_SYM clamps to +-(2^i - 2^-f), WRAP keeps k+i+f bits); an element with k+i+f = 0
// is 0. Integer arithmetic on raw values; the table holds (k, i, f) triples. Empty slots stay 0.
//
// Structure: every element at once (sparse: slots unrolled by pixel_parallel, channels fully); the
// (k, i, f) table is partitioned completely (constants per element for spx.quantize; a position-
// indexed LUT ROM per slot for spx.sparse_quantize); rounding by a shift and a mask, wrapping by a
// mask (no divider); a variable shift per element where f varies. 0 cycles (sparse: N/PP steps).
#ifndef SPX_QUANTIZE_H_
#define SPX_QUANTIZE_H_

#include "spx_common.h"

namespace spx {

enum kif_overflow { kif_wrap, kif_sat, kif_sat_sym };

// Fields of a layer config: quant (ap_q_mode), overflow (kif_overflow); spx.quantize: n_in;
// spx.sparse_quantize: n_max, n_chan, height, width (the table's image), pixel_parallel (unsigned).
struct quantize_config {};

// The raw (at frac_out fraction bits) of raw (at frac_in) quantized by (k, i, f).
template <ap_q_mode Q, kif_overflow O>
long long quantize_kif(long long raw, int frac_in, int k, int i, int f, int frac_out) {
    if (k + i + f == 0) return 0;
    const int shift = frac_in - f;
    const long long q = shift > 0 ? shift_round<Q>(raw, shift) : shift_left(raw, -shift);
    const long long mag = 1LL << (i + f), hi = mag - 1;
    long long y;
    if (O == kif_wrap) {
        const long long lo = k ? -mag : 0, span = mag << k;
        y = ((q - lo) & (span - 1)) + lo;  // (q - lo) mod span: span is a power of two
    } else {
        y = clamp(q, k ? (O == kif_sat_sym ? -hi : -mag) : 0, hi);
    }
    return shift_left(y, frac_out - f);
}

template <class data_T, class res_T, typename CONFIG_T, class table_T>
void quantize(const data_T x[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], const table_T kif[CONFIG_T::n_in * 3]) {
    #pragma HLS ARRAY_PARTITION variable=kif complete
    for (unsigned e = 0; e < CONFIG_T::n_in; e++) {
        #pragma HLS UNROLL
        res[e] = from_raw<res_T>(quantize_kif<CONFIG_T::quant, CONFIG_T::overflow>(
            to_raw(x[e]), frac_bits<data_T>(), kif[3 * e], kif[3 * e + 1], kif[3 * e + 2], frac_bits<res_T>()));
    }
}

template <class data_T, class hash_T, class res_T, typename CONFIG_T, class table_T>
void sparse_quantize(const data_T feat[CONFIG_T::n_max * CONFIG_T::n_chan], const hash_T hash[CONFIG_T::n_max * 2],
                     res_T res[CONFIG_T::n_max * CONFIG_T::n_chan],
                     const table_T kif[CONFIG_T::height * CONFIG_T::width * CONFIG_T::n_chan * 3]) {
    SPX_CHECK_FACTOR(CONFIG_T::n_max, CONFIG_T::pixel_parallel);
    #pragma HLS ARRAY_PARTITION variable=kif complete
    for (unsigned s = 0; s < CONFIG_T::n_max; s++) {
        #pragma HLS UNROLL factor=CONFIG_T::pixel_parallel
        const bool active = is_active(hash, s);
        const unsigned pixel = active ? unsigned(hash[2 * s] - 1) * CONFIG_T::width + unsigned(hash[2 * s + 1] - 1) : 0;
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            const unsigned e = 3 * (pixel * CONFIG_T::n_chan + c), k = s * CONFIG_T::n_chan + c;
            res[k] = active ? from_raw<res_T>(quantize_kif<CONFIG_T::quant, CONFIG_T::overflow>(
                                  to_raw(feat[k]), frac_bits<data_T>(), kif[e], kif[e + 1], kif[e + 2], frac_bits<res_T>()))
                            : from_raw<res_T>(0);
        }
    }
}

}  // namespace spx

#endif

// spx kernel library: one templated kernel per spx op, each configured by a struct of constants
// and types (see the *_config structs for the fields). Arrays are io_parallel, flattened row-major;
// a sparse tensor is feat[n_max * n_chan] plus hash[n_max * 2] ((h+1, w+1), or (0, 0) when empty).
#ifndef SPX_H_
#define SPX_H_

#include "spx_activation.h"
#include "spx_dense.h"
#include "spx_input_reduce.h"
#include "spx_quantize.h"
#include "spx_sparse_activation.h"
#include "spx_sparse_conv2d.h"
#include "spx_sparse_flatten.h"
#include "spx_sparse_pool2d.h"

#endif

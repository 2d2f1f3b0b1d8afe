// Parity checkers for the S4 / S4D / SGConv golden cases (shared/golden/s4_sgconv): the S4Block
// with DPLR and diagonal kernels (kernel, pre-activation output, output, every gradient, dense
// and linear step modes, discretised step matrices, the C-tilde rewrite), the minimal s4d.py
// layer, SGConv's GConv (kernel, outputs, gradients, kernel_norm) and the HiPPO-LegS / NPLR
// initialisation. Tolerance: 1e-9 relative to each tensor's max-abs value, in float64.
#ifndef LOOM_TOOLS_PARITY_S4_SGCONV_H_
#define LOOM_TOOLS_PARITY_S4_SGCONV_H_

#include "tools/parity_cases.h"

namespace loom::parity {

inline constexpr double kS4SgConvTolerance = 1e-9;

void RegisterS4SgConvCheckers(CheckerRegistry* registry);

}  // namespace loom::parity

#endif  // LOOM_TOOLS_PARITY_S4_SGCONV_H_

/* One instruction set's kernels, for double and for float data.
 * Included by _vkern.h with VISA (a name suffix) and VATTR (attributes)
 * defined; see _vkern_body.h.  No include guard: included once per ISA. */

#define VK_CAT_(a, b, c) a##_##b##_##c
#define VK_CAT(a, b, c) VK_CAT_(a, b, c)

#define VT double
#define VDOUBLE 1
#define VEXP vc_exp
#define VFB_REDUCE vk_fbr_d
#define VFB_ROWS vk_fbe_d
#define VN(x) VK_CAT(vk_##x, d, VISA)
#define VN_AVX2(x) VK_CAT(vk_##x, d, avx2)
#include "_vkern_body.h"
#undef VT
#undef VDOUBLE
#undef VEXP
#undef VFB_REDUCE
#undef VFB_ROWS
#undef VN
#undef VN_AVX2

#define VT float
#define VDOUBLE 0
#define VEXP vc_exp_f
#define VFB_REDUCE vk_fbr_f
#define VFB_ROWS vk_fbe_f
#define VN(x) VK_CAT(vk_##x, f, VISA)
#define VN_AVX2(x) VK_CAT(vk_##x, f, avx2)
#include "_vkern_body.h"
#undef VT
#undef VDOUBLE
#undef VEXP
#undef VFB_REDUCE
#undef VFB_ROWS
#undef VN
#undef VN_AVX2

#undef VK_CAT
#undef VK_CAT_

/* vcalc's vectorised kernels and their run-time dispatch.
 *
 * The kernels (_vkern_body.h) are plain C loops written so that the
 * compiler vectorises them; they are compiled up to three times:
 *
 *   base    the compiler's baseline target (SSE2 on x86-64, NEON on arm64,
 *           whatever the platform's default is elsewhere): always built;
 *   avx2    __attribute__((target("arch=x86-64-v3"))): AVX2 + FMA;
 *   avx512  __attribute__((target("arch=x86-64-v4"))): AVX-512 F/BW/CD/DQ/VL;
 *
 * the last two only for x86-64 with gcc >= 11 or clang >= 12 (the compilers
 * that know those arch names).  vk_select() asks the CPU (cpuid through
 * __builtin_cpu_supports, which also checks that the OS saves the vector
 * registers) once, at import, and returns the table of the best path; the
 * environment variable VCALC_SIMD=base|avx2|avx512 caps the choice (never
 * above what the CPU has), so tests can run every path this machine can.
 * This is done by hand rather than with target_clones so that it needs no
 * ifunc (glibc only) and so that show_config() can say which path runs.
 */
#ifndef VCALC_VKERN_H
#define VCALC_VKERN_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "_vmath.h"

#ifndef PY_SSIZE_T_MAX
#include <stddef.h>
typedef ptrdiff_t Py_ssize_t;
#endif

/* MSVC's C compiler spells `restrict` __restrict and has _Pragma only in C11
 * mode; there the macro-generated loops lose their simd hint, not their
 * meaning (the #pragma lines elsewhere are ignored as unknown pragmas). */
#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict
#define VK_OMP_SIMD
#else
#define VK_OMP_SIMD _Pragma("omp simd")
#endif

/* The scalar edge-case paths in _kernels.pyx, one row at a time. */
typedef double (*vk_fbr_d)(const double *, Py_ssize_t);
typedef double (*vk_fbr_f)(const float *, Py_ssize_t);
typedef void (*vk_fbe_d)(const double *, double *, Py_ssize_t);
typedef void (*vk_fbe_f)(const float *, float *, Py_ssize_t);

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(VCALC_NO_DISPATCH) && \
    ((defined(__clang__) && __clang_major__ >= 12) ||                         \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define VK_X86_DISPATCH 1
#else
#define VK_X86_DISPATCH 0
#endif

#if VK_X86_DISPATCH
#include "_vexp512.h"
#endif

#define VK_AVX512 0
#define VK_AVX2 0
#define VISA base
#define VATTR
#include "_vkern_isa.h"
#undef VISA
#undef VATTR

#if VK_X86_DISPATCH
#undef VK_AVX2
#define VK_AVX2 1
#define VISA avx2
#define VATTR __attribute__((target("arch=x86-64-v3")))
#include "_vkern_isa.h"
#undef VISA
#undef VATTR
#undef VK_AVX2
#define VK_AVX2 0
#undef VK_AVX512
#define VK_AVX512 1
#define VISA avx512
#define VATTR __attribute__((target("arch=x86-64-v4")))
#include "_vkern_isa.h"
#undef VISA
#undef VATTR
#endif
#undef VK_AVX512
#undef VK_AVX2

typedef struct {
    const char *name;
    void (*exp_d)(const double *, double *, Py_ssize_t);
    void (*exp_f)(const float *, float *, Py_ssize_t);
    void (*logsumexp_d)(const double *, double *, Py_ssize_t, Py_ssize_t, vk_fbr_d);
    void (*logsumexp_f)(const float *, float *, Py_ssize_t, Py_ssize_t, vk_fbr_f);
    void (*softmax_d)(const double *, double *, Py_ssize_t, Py_ssize_t, vk_fbe_d);
    void (*softmax_f)(const float *, float *, Py_ssize_t, Py_ssize_t, vk_fbe_f);
    void (*log_softmax_d)(const double *, double *, Py_ssize_t, Py_ssize_t, vk_fbe_d);
    void (*log_softmax_f)(const float *, float *, Py_ssize_t, Py_ssize_t, vk_fbe_f);
    void (*qf_d)(const double *, const double *, Py_ssize_t, Py_ssize_t, double *, double *);
    void (*qf_f)(const double *, const float *, Py_ssize_t, Py_ssize_t, float *, float *);
    void (*rowdot_half_d)(const double *, const double *, Py_ssize_t, Py_ssize_t, double *);
    void (*rowdot_half_f)(const float *, const float *, Py_ssize_t, Py_ssize_t, float *);
    /* qf_d and qf_f should be used up to these n (double data, float
     * data): a vectorised pass with S in L1.  Above them the caller forms
     * G = X S^T with BLAS and calls rowdot_half (see _quadratic.py for the
     * measurements behind the numbers in vk_tables). */
    Py_ssize_t qf_direct_max_d, qf_direct_max_f;
} vk_table;

#define VK_TABLE(isa, label, qf_max_d, qf_max_f)                              \
    { label, vk_exp_d_##isa, vk_exp_f_##isa, vk_logsumexp_d_##isa,             \
      vk_logsumexp_f_##isa, vk_softmax_d_##isa, vk_softmax_f_##isa,            \
      vk_log_softmax_d_##isa, vk_log_softmax_f_##isa, vk_qf_d_##isa,           \
      vk_qf_f_##isa, vk_rowdot_half_d_##isa, vk_rowdot_half_f_##isa, qf_max_d, qf_max_f }

#if VK_X86_DISPATCH
static const vk_table vk_tables[3] = {
    VK_TABLE(base, "baseline (SSE2)", 8, 8),
    VK_TABLE(avx2, "AVX2+FMA (x86-64-v3)", 16, VY_QFM_MAX_N),
    VK_TABLE(avx512, "AVX-512 (x86-64-v4)", 32, VX_QFM_MAX_N),
};
#elif defined(__aarch64__) || defined(_M_ARM64)
static const vk_table vk_tables[1] = {VK_TABLE(base, "baseline (NEON)", 8, 8)};
#else
static const vk_table vk_tables[1] = {VK_TABLE(base, "baseline (portable C)", 8, 8)};
#endif

/* The best level this CPU runs: 0 base, 1 avx2, 2 avx512. */
static int vk_cpu_level(void)
{
#if VK_X86_DISPATCH
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
          __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2")))
        return 0;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
          __builtin_cpu_supports("avx512vl")))
        return 1;
    return 2;
#else
    return 0;
#endif
}

/* The table to use: the CPU's best, capped by `cap` ("base", "avx2",
 * "avx512"; NULL or anything else: no cap). */
static const vk_table *vk_select(const char *cap)
{
    int level = vk_cpu_level();
    if (cap && strcmp(cap, "base") == 0)
        level = 0;
    else if (cap && strcmp(cap, "avx2") == 0 && level > 1)
        level = 1;
    return &vk_tables[level];
}

#endif /* VCALC_VKERN_H */

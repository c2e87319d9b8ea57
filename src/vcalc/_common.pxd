# Declarations shared by vcalc's Cython kernels.
#
# ``real`` is the element type of every kernel: float32 and float64 data each
# get their own compiled loop.  Whatever ``real`` is, sums, maxima and
# intermediate products are carried in ``double``.

ctypedef fused real:
    float
    double

// Debian's libopenblas-dev installs the CBLAS interface as <cblas.h>.
#include <cblas.h>
#include <stddef.h>

// LAPACK's divide-and-conquer symmetric eigensolver, exported by OpenBLAS as the Fortran symbol
// (Debian ships no LAPACK header with it). Column-major; the two trailing arguments are the
// hidden lengths of the character arguments that gfortran-built LAPACK expects.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);

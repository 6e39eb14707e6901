// Debian's libopenblas-dev installs the CBLAS interface as <cblas.h>.
#include <cblas.h>

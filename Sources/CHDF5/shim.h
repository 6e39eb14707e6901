// HDF5 exposes its type and flag constants as macros over mutable globals
// (H5T_NATIVE_FLOAT is `(H5OPEN H5T_NATIVE_FLOAT_g)`), which Swift can neither import
// nor, in Swift 6, touch as unsynchronised globals. These inline functions evaluate
// the macros in C and hand Swift plain values.
#include <hdf5/serial/hdf5.h>

static inline hid_t bp_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t bp_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t bp_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t bp_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t bp_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t bp_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t bp_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t bp_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t bp_H5S_ALL(void) { return H5S_ALL; }
static inline unsigned bp_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned bp_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned bp_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline size_t bp_H5T_VARIABLE(void) { return H5T_VARIABLE; }

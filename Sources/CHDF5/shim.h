// HDF5 exposes its type and flag constants as macros over mutable globals
// (H5T_NATIVE_FLOAT is `(H5OPEN H5T_NATIVE_FLOAT_g)`), which Swift can neither import
// nor, in Swift 6, touch as unsynchronised globals. These inline functions evaluate
// the macros in C and hand Swift plain values.
// The include path comes from pkg-config (hdf5.pc: /usr/include/hdf5/serial on Debian).
#include <hdf5.h>
// zlib (a dependency of HDF5, and of Debian's libhdf5-dev): compresses the result parts of an
// unfinished run (BackpackResults/ResultPart.swift).
#include <zlib.h>

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

// ---- Added for BackpackResults -------------------------------------------------------------

// Portable on-disk element types (what h5py reads as <f4, <f8, <i8).
static inline hid_t bp_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t bp_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t bp_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t bp_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t bp_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t bp_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline unsigned bp_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned bp_H5P_CRT_ORDER_TRACKED(void) { return H5P_CRT_ORDER_TRACKED; }
static inline unsigned bp_H5P_CRT_ORDER_INDEXED(void) { return H5P_CRT_ORDER_INDEXED; }
static inline int bp_H5Z_FILTER_DEFLATE(void) { return H5Z_FILTER_DEFLATE; }
static inline int bp_H5Z_FILTER_SHUFFLE(void) { return H5Z_FILTER_SHUFFLE; }

/// Turns off HDF5's automatic printing of error stacks to stderr (errors are thrown instead).
static inline herr_t bp_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Clears the current error stack.
static inline herr_t bp_clear_errors(void) { return H5Eclear2(H5E_DEFAULT); }

typedef struct { char *buf; size_t cap; size_t len; } bp_errbuf_t;

static herr_t bp_error_walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    (void)n;
    bp_errbuf_t *b = (bp_errbuf_t *)data;
    if (b->cap == 0 || b->len + 1 >= b->cap) return 0;
    const char *desc = (err && err->desc && err->desc[0]) ? err->desc : (err && err->func_name ? err->func_name : "?");
    int w = snprintf(b->buf + b->len, b->cap - b->len, "%s%s", b->len ? "; " : "", desc);
    if (w > 0) {
        b->len += (size_t)w;
        if (b->len >= b->cap) b->len = b->cap - 1;
    }
    return 0;
}

/// Writes the descriptions on the current error stack (outermost API call first) into `buf`,
/// separated by "; ", and clears the stack. Returns the length written.
static inline size_t bp_error_stack_message(char *buf, size_t cap) {
    bp_errbuf_t b = { buf, cap, 0 };
    if (cap > 0) buf[0] = 0;
    hid_t stack = H5Eget_current_stack();  /* also clears the current stack */
    if (stack < 0) return 0;
    H5Ewalk2(stack, H5E_WALK_DOWNWARD, bp_error_walk_cb, &b);
    H5Eclose_stack(stack);
    return b.len;
}

/// Number of attributes on an object, or -1 on failure.
static inline long long bp_num_attrs(hid_t loc) {
    H5O_info_t info;
    if (H5Oget_info2(loc, &info, H5O_INFO_NUM_ATTRS) < 0) return -1;
    return (long long)info.num_attrs;
}
static inline hid_t bp_H5P_ATTRIBUTE_CREATE(void) { return H5P_ATTRIBUTE_CREATE; }

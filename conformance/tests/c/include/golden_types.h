/* C types for the golden .defs files of mig-rs/tests/defs/good (written for mig-rs).
   Compiling GNU MIG's generated code with this header checks every size against GNU MIG's
   own `_Static_assert(sizeof(T) == ...)` lines (tests/layout.rs). */
#ifndef GOLDEN_TYPES_H
#define GOLDEN_TYPES_H
#include <stdint.h>
#include <mach/port.h>
#include <mach/message.h>

/* complex_types.defs */
typedef int32_t fixed_array_t[6];
typedef struct { int64_t v[3]; } struct_array_t;
typedef short short_array_t[5];
typedef int32_t *var_array_t;
typedef char *var_bytes_t;
typedef char *var_bytes8_t;
typedef char *big_var_t;
typedef int32_t *indefinite_t;
typedef char *indefinite_star_t;
typedef int64_t *ool_t;
typedef int32_t *ool_fixed_t;
typedef char cstring_t[64];
typedef char *var_cstring_t;
typedef struct { unsigned char v[64]; } wide_t;
typedef struct { int32_t a; char b; int64_t c; } mixed_struct_t;
typedef struct { char a; short b; } small_struct_t;
typedef mach_port_t port_array_t[4];
typedef mach_port_t *var_port_array_t;
typedef struct_array_t nested_t[2];
typedef struct_array_t *counted_t;

/* case.defs */
typedef int32_t *Small;
typedef struct { int32_t v[2]; } Fixed;
typedef int32_t Routines;

/* types.defs */
typedef int64_t int64;
typedef int32_t alias_t;
typedef mach_port_t pair_t;
typedef int32_t numeric_t;
typedef int64_t long_decl_t;
typedef int32_t *var_t;
typedef char expr_array_t[11];
typedef struct { int32_t v[4]; } expr_struct_t;
typedef struct object *object_t;
typedef mach_port_t translated_t;
typedef mach_port_t reset_t;
typedef mach_port_t payload_t;
typedef int32_t local_t[3];
typedef int64_t local64_t;
extern object_t port_to_object(mach_port_t);
extern mach_port_t object_to_port(object_t);
extern void object_release(object_t);
extern object_t payload_to_object(unsigned long);

/* directions.defs */
typedef mach_port_t reply_port_t;
typedef mach_port_t sreply_port_t;

/* waittime.defs */
extern natural_t some_timeout_variable;

/* preprocessor.defs */
typedef int64_t word_t;
typedef int64_t *list_t;

/* warn_*.defs */
typedef int32_t redundant_long_t, cancel_t, twice_t, not_needed_t, var_flag_t, both_dealloc_t;
typedef struct { unsigned char v[256]; } too_big_t;
typedef int64_t strange_t;
typedef unsigned char bits_t;	/* GNU MIG: sizeof == size / 8 */
typedef int32_t empty_t[1];
typedef int32_t conflict_t;
typedef mach_port_t no_intran_t;

/* GNU MIG declares const in-arguments of arrays and strings with `const_` names. */
typedef const int32_t *const_indefinite_t;
typedef const char *const_indefinite_star_t;
typedef const char *const_cstring_t;
typedef const char *const_var_cstring_t;
typedef const char *const_var_bytes_t;
typedef const char *const_big_var_t;
typedef const mach_port_t *const_mach_port_array_t;

#endif

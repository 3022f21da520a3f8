/* Stand-in for GNU Mach's kernel header, for compiling KernelUser stubs in tests. */
#ifndef GOLDEN_KERN_IPC_MIG_H
#define GOLDEN_KERN_IPC_MIG_H
#include <mach/message.h>
typedef struct ipc_port *ipc_port_t;
extern mach_msg_return_t mach_msg_send_from_kernel(mach_msg_header_t *, mach_msg_size_t);
extern mach_msg_return_t mach_msg_rpc_from_kernel(mach_msg_header_t *, mach_msg_size_t, mach_msg_size_t);
#endif

/* Stand-in for GNU Mach's kernel header, for compiling KernelServer stubs in tests. */
#ifndef GOLDEN_IPC_PORT_H
#define GOLDEN_IPC_PORT_H
typedef struct ipc_port *ipc_port_t;
#endif

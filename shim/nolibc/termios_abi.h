// The C library's struct termios against the kernel's (TCGETS/TCSETS), and
// cfmakeraw(3), for the shim when it runs without a C library.
#pragma once

#include <termios.h>

namespace mproxy::shim::nolibc {

// What the TCGETS and TCSETS* ioctls carry on Linux (asm-generic
// struct termios): 19 control characters and no separate speeds.
struct KernelTermios {
  tcflag_t iflag;
  tcflag_t oflag;
  tcflag_t cflag;
  tcflag_t lflag;
  cc_t line;
  cc_t cc[19];
};
static_assert(sizeof(KernelTermios) == 36);

// As tcgetattr(3) fills it: the control characters the kernel lacks are
// disabled, and both speeds are the one the kernel keeps in the cflag.
void FromKernel(const KernelTermios& k, termios* t);
KernelTermios ToKernel(const termios& t);

// cfmakeraw(3): no echo, no line editing, no signal keys, 8-bit bytes,
// reads return as soon as one byte is there.
void MakeRaw(termios* t);

}  // namespace mproxy::shim::nolibc

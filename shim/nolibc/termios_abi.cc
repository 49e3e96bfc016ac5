// Plain field copies; the conversions glibc's tcgetattr/tcsetattr do on Linux.
#include "shim/nolibc/termios_abi.h"

#include <unistd.h>  // _POSIX_VDISABLE

#include <cstddef>

namespace mproxy::shim::nolibc {

void FromKernel(const KernelTermios& k, termios* t) {
  *t = termios{};
  t->c_iflag = k.iflag;
  t->c_oflag = k.oflag;
  t->c_cflag = k.cflag;
  t->c_lflag = k.lflag;
  t->c_line = k.line;
  for (size_t i = 0; i < sizeof k.cc; ++i) t->c_cc[i] = k.cc[i];
  for (size_t i = sizeof k.cc; i < NCCS; ++i) t->c_cc[i] = _POSIX_VDISABLE;
  t->c_ispeed = t->c_ospeed = k.cflag & (CBAUD | CBAUDEX);
}

KernelTermios ToKernel(const termios& t) {
  KernelTermios k{};
  k.iflag = t.c_iflag;
  k.oflag = t.c_oflag;
  k.cflag = t.c_cflag;
  k.lflag = t.c_lflag;
  k.line = t.c_line;
  for (size_t i = 0; i < sizeof k.cc; ++i) k.cc[i] = t.c_cc[i];
  return k;
}

void MakeRaw(termios* t) {
  t->c_iflag &=
      ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
  t->c_oflag &= ~static_cast<tcflag_t>(OPOST);
  t->c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  t->c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB);
  t->c_cflag |= CS8;
  t->c_cc[VMIN] = 1;
  t->c_cc[VTIME] = 0;
}

}  // namespace mproxy::shim::nolibc

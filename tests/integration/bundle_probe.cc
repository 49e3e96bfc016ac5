// Stand-in for mproxy-agent in the bundle tests: run inside a foreign userland,
// it exercises libcbor, libuv (timer, spawn, pipe) and libstdc++ (iostreams,
// exceptions, so libgcc_s unwinding) and prints one line per result.
//
// usage: bundle_probe EXIT_CODE   — prints its report, then exits EXIT_CODE.
#include <cbor.h>
#include <gnu/libc-version.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct CborItemDeleter {
  void operator()(cbor_item_t* item) const { cbor_decref(&item); }
};
using CborItem = std::unique_ptr<cbor_item_t, CborItemDeleter>;

std::string Hex(const unsigned char* data, size_t size) {
  std::ostringstream out;
  for (size_t i = 0; i < size; ++i) {
    out << std::hex << std::setw(2) << std::setfill('0') << int{data[i]};
  }
  return out.str();
}

std::string Serialize(const cbor_item_t* item) {
  unsigned char* buffer = nullptr;
  size_t capacity = 0;
  size_t length = cbor_serialize_alloc(item, &buffer, &capacity);
  if (length == 0) throw std::runtime_error("cbor_serialize_alloc failed");
  std::string hex = Hex(buffer, length);
  std::free(buffer);
  return hex;
}

void AddPair(cbor_item_t* map, const char* key, cbor_item_t* value) {
  if (!cbor_map_add(map, cbor_pair{.key = cbor_move(cbor_build_string(key)),
                                   .value = cbor_move(value)})) {
    throw std::runtime_error("cbor_map_add failed");
  }
}

// {"n": 42, "s": "mproxy", "a": [1, -2, true]}, encoded, decoded, re-encoded.
void CheckCbor() {
  CborItem array(cbor_new_definite_array(3));
  if (!cbor_array_push(array.get(), cbor_move(cbor_build_uint8(1))) ||
      !cbor_array_push(array.get(), cbor_move(cbor_build_negint8(1))) ||
      !cbor_array_push(array.get(), cbor_move(cbor_build_bool(true)))) {
    throw std::runtime_error("cbor_array_push failed");
  }
  CborItem map(cbor_new_definite_map(3));
  AddPair(map.get(), "n", cbor_build_uint8(42));
  AddPair(map.get(), "s", cbor_build_string("mproxy"));
  AddPair(map.get(), "a", cbor_incref(array.get()));

  unsigned char* buffer = nullptr;
  size_t capacity = 0;
  size_t length = cbor_serialize_alloc(map.get(), &buffer, &capacity);
  std::unique_ptr<unsigned char, decltype(&std::free)> owned(buffer, &std::free);
  cbor_load_result result;
  CborItem decoded(cbor_load(buffer, length, &result));
  if (!decoded || result.error.code != CBOR_ERR_NONE || !cbor_isa_map(decoded.get()) ||
      cbor_map_size(decoded.get()) != 3) {
    throw std::runtime_error("cbor_load did not return the map");
  }
  cbor_pair* pairs = cbor_map_handle(decoded.get());
  if (cbor_get_uint8(pairs[0].value) != 42) throw std::runtime_error("n != 42");
  std::cout << "cbor " << Hex(buffer, length) << "\n";
  std::cout << "cbor-roundtrip " << (Serialize(decoded.get()) == Hex(buffer, length) ? "ok" : "MISMATCH")
            << "\n";
}

void CheckException() {
  try {
    throw std::runtime_error("unwound");
  } catch (const std::exception& e) {
    std::cout << "exception " << e.what() << "\n";
  }
}

// One uv loop: a timer, then /bin/sh as a child whose stdout comes back over a
// pipe. The child reports the LD_LIBRARY_PATH it inherited.
class LoopCheck {
 public:
  LoopCheck() {
    uv_loop_init(&loop_);
    loop_.data = this;
  }

  int Run() {
    uv_timer_init(&loop_, &timer_);
    uv_timer_start(&timer_, &LoopCheck::OnTimer, 20, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    return uv_loop_close(&loop_);
  }

  const std::string& child_output() const { return child_output_; }
  const std::string& report() const { return report_; }

 private:
  static LoopCheck* Self(uv_handle_t* handle) {
    return static_cast<LoopCheck*>(handle->loop->data);
  }

  static void OnTimer(uv_timer_t* timer) noexcept {
    LoopCheck* self = Self(reinterpret_cast<uv_handle_t*>(timer));
    self->report_ += "timer ok\n";
    uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
    self->Spawn();
  }

  void Spawn() noexcept {
    uv_pipe_init(&loop_, &out_, 0);
    char file[] = "/bin/sh";
    char dash_c[] = "-c";
    char script[] = "echo child-ok; echo \"LD_LIBRARY_PATH=${LD_LIBRARY_PATH-unset}\"";
    char* args[] = {file, dash_c, script, nullptr};
    uv_stdio_container_t stdio[3] = {};
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&out_);
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t options = {};
    options.exit_cb = &LoopCheck::OnExit;
    options.file = file;
    options.args = args;
    options.stdio = stdio;
    options.stdio_count = 3;
    int rc = uv_spawn(&loop_, &process_, &options);
    if (rc != 0) {
      report_ += std::string("spawn failed ") + uv_strerror(rc) + "\n";
      uv_close(reinterpret_cast<uv_handle_t*>(&out_), nullptr);
      return;
    }
    uv_read_start(reinterpret_cast<uv_stream_t*>(&out_), &LoopCheck::OnAlloc,
                  &LoopCheck::OnRead);
  }

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    LoopCheck* self = Self(handle);
    *buf = uv_buf_init(self->read_buffer_, sizeof self->read_buffer_);
  }

  static void OnRead(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) noexcept {
    LoopCheck* self = Self(reinterpret_cast<uv_handle_t*>(stream));
    if (n > 0) self->child_output_.append(buf->base, static_cast<size_t>(n));
    if (n < 0) uv_close(reinterpret_cast<uv_handle_t*>(stream), nullptr);
  }

  static void OnExit(uv_process_t* process, int64_t status, int signal) noexcept {
    LoopCheck* self = Self(reinterpret_cast<uv_handle_t*>(process));
    self->report_ += "child exit " + std::to_string(status) + " signal " +
                     std::to_string(signal) + "\n";
    uv_close(reinterpret_cast<uv_handle_t*>(process), nullptr);
  }

  uv_loop_t loop_;
  uv_timer_t timer_;
  uv_process_t process_;
  uv_pipe_t out_;
  char read_buffer_[4096];
  std::string child_output_;
  std::string report_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: bundle_probe EXIT_CODE\n";
    return 2;
  }
  const char* own_path = std::getenv("LD_LIBRARY_PATH");
  std::cout << "argv0 " << argv[0] << "\n";
  std::cout << "glibc " << gnu_get_libc_version() << "\n";
  std::cout << "self LD_LIBRARY_PATH=" << (own_path ? own_path : "unset") << "\n";
  try {
    CheckCbor();
  } catch (const std::exception& e) {
    std::cout << "cbor failed: " << e.what() << "\n";
  }
  CheckException();

  LoopCheck loop;
  int close_rc = loop.Run();
  std::cout << loop.report();
  std::istringstream lines(loop.child_output());
  for (std::string line; std::getline(lines, line);) std::cout << "child " << line << "\n";
  std::cout << "loop-close " << close_rc << "\n";
  std::cout.flush();
  return std::atoi(argv[1]);
}

// libFuzzer target: ParseConfig on arbitrary bytes. It must return a Result,
// never crash or hang; what parses must layer and match without trouble.
#include <cstdint>
#include <string_view>

#include "broker/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mproxy::broker;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto layer = ParseConfig(in, "/fuzz/mproxy.toml", "/home/fuzz");
  if (!layer.ok()) return 0;
  Config config;
  ApplyFileLayer(*layer, &config);
  ApplyCommandLine(*layer, &config);
  (void)IsLocalCommand(config.local, "/usr/bin/python3.11");
  (void)IsLocalCommand(config.local, "make");
  (void)EnvNameMatches(config.env_keep, "LC_ALL");
  return 0;
}

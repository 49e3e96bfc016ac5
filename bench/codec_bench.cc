// Codec and multiplexer throughput on one core: 64 KiB Data frames through
// encode -> frame -> decode, small-frame rate, directory listings (an FsReply
// of 50 entries with attributes, as a tree walk receives them), and bytes
// through a Mux pair.
// Usage: codec_bench [--quick]   (prints one line per measurement)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "proto/codec.h"
#include "proto/fs.h"
#include "proto/frame.h"
#include "proto/hello.h"
#include "proto/mux.h"

namespace {

using namespace mproxy::proto;
using Clock = std::chrono::steady_clock;

// Runs `round` (which returns units of work done) repeatedly for about
// `seconds`, and returns units per second. Median of `reps` such runs.
double Rate(const std::function<double()>& round, double seconds, int reps) {
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    double units = 0;
    auto start = Clock::now();
    double elapsed = 0;
    do {
      units += round();
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < seconds);
    rates.push_back(units / elapsed);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

volatile size_t g_sink;

// Encode `batch` messages into one buffer, split it into frames, decode all.
double CodecRound(const Message& m, int batch, bool count_bytes) {
  static std::string buf;
  static FrameDecoder dec;
  buf.clear();
  for (int i = 0; i < batch; ++i) {
    if (!EncodeFrame(m, &buf).ok()) std::abort();
  }
  dec.Feed(buf);
  double units = 0;
  for (;;) {
    auto f = dec.Next();
    if (!f.ok() || !f->has_value()) break;
    auto msg = DecodeMessage(**f);
    if (!msg.ok()) std::abort();
    if (count_bytes) {
      units += std::get<Data>(*msg).bytes.size();
    } else {
      units += 1;
    }
    g_sink = msg->index();
  }
  return units;
}

// A listing of 50 files with every attribute set, as LISTDIR returns it.
FsReply Listing() {
  FsReaddirReply r;
  for (int i = 0; i < 50; ++i) {
    FsDirEntry& e = r.entries.emplace_back();
    e.name = "f" + std::to_string(1000 + i) + ".txt";
    e.offset = static_cast<uint64_t>(i + 1);
    e.ino = 4000 + static_cast<uint64_t>(i);
    e.type = 0100000;
    FsAttr& a = e.attr.emplace();
    a.ino = e.ino;
    a.mode = 0100644;
    a.nlink = 1;
    a.uid = a.gid = 1000;
    a.size = 24;
    a.blocks = 8;
    a.blksize = 4096;
    a.atime = a.mtime = a.ctime = 1764000000;
    a.atime_nsec = a.mtime_nsec = a.ctime_nsec = 123456789;
    a.no_xattrs = true;
  }
  r.eof = true;
  return MakeFsReply(7, std::move(r));
}

// Encode, frame, decode and parse one listing; returns its entries.
double ListingRound(const FsReply& reply) {
  static std::string buf;
  static FrameDecoder dec;
  buf.clear();
  if (!EncodeFrame(reply, &buf).ok()) std::abort();
  dec.Feed(buf);
  auto f = dec.Next();
  if (!f.ok() || !f->has_value()) std::abort();
  auto msg = DecodeMessage(**f);
  if (!msg.ok()) std::abort();
  auto parsed = ParseFsReplyFor<FsListdirRequest>(std::get<FsReply>(*msg));
  if (!parsed.ok()) std::abort();
  return static_cast<double>(parsed->entries.size());
}

struct Reader : MuxDelegate {
  void OnHello(const Hello&, uint32_t) override {}
  void OnMessage(Message&&) override {}
  void OnData(uint32_t c, uint32_t fd, std::string_view b) override {
    bytes += b.size();
    mux->Consume(c, fd, b.size());
  }
  void OnEof(uint32_t, uint32_t) override {}
  void OnWritable(uint32_t, uint32_t) override {}
  Mux* mux = nullptr;
  double bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  double secs = quick ? 0.02 : 1.0;
  int reps = quick ? 1 : 5;

  Data big{1, 1, std::string(64 * 1024, 'x')};
  double gbps = Rate([&] { return CodecRound(big, 16, true); }, secs, reps) / 1e9;
  std::printf("data64k_codec_GBps %.2f\n", gbps);

  Data small{1, 1, std::string(16, 's')};
  double small_rate = Rate([&] { return CodecRound(small, 1024, false); }, secs, reps);
  std::printf("small_data16_frames_per_s %.0f\n", small_rate);

  Window w{12, 1, 131072};
  double win_rate = Rate([&] { return CodecRound(w, 1024, false); }, secs, reps);
  std::printf("window_frames_per_s %.0f\n", win_rate);

  FsReply listing = Listing();
  double entries_rate = Rate([&] { return ListingRound(listing); }, secs, reps);
  std::printf("listing_entries_per_s %.0f\n", entries_rate);

  // Whole mux path: Write -> TakeOutput -> Feed -> OnData -> Consume/Window.
  Reader ra, rb;
  Mux a(&ra, MakeHello("bench", {}));
  Mux b(&rb, MakeHello("bench", {}));
  ra.mux = &a;
  rb.mux = &b;
  a.OpenChannel(1);
  b.OpenChannel(1);
  std::string chunk(64 * 1024, 'm');
  std::string wire;
  double mux_gbps = Rate(
      [&] {
        double before = rb.bytes;
        for (int i = 0; i < 16; ++i) {
          a.Write(1, 1, chunk);
          wire.clear();
          a.TakeOutput(&wire, 1 << 20);
          if (!b.Feed(wire).ok()) std::abort();
          wire.clear();
          b.TakeOutput(&wire, 1 << 20);
          if (!a.Feed(wire).ok()) std::abort();
        }
        return rb.bytes - before;
      },
      secs, reps) / 1e9;
  std::printf("mux_stream_GBps %.2f\n", mux_gbps);
  return 0;
}

// AgentClient: the real mproxy-agent started as a child over two pipes and
// driven through a proto::Mux by a blocking poll loop. Test code only.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proto/messages.h"
#include "proto/mux.h"

namespace mproxy::testing {

// What arrived on one channel.
struct ChannelLog {
  std::optional<proto::Started> started;
  std::map<uint32_t, std::string> out;  // fd -> bytes
  std::set<uint32_t> eofs;
  std::optional<proto::Exit> exit;
  std::vector<proto::ErrorMsg> errors;
  std::vector<proto::Stopped> stops;
};

// An Exec with stdio pipes 0 (to the child), 1 and 2 (from it) and a small
// fixed environment.
proto::Exec MakeExec(uint32_t channel, std::vector<std::string> argv);

// One agent process and the client end of its session. Single-threaded.
class AgentClient : public proto::MuxDelegate {
 public:
  AgentClient();
  ~AgentClient() override;
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Starts the agent and waits for its Hello.
  Status Start(const std::vector<std::string>& args = {});

  void Send(const proto::Message& m);
  // Queues bytes (and optionally Eof) on an input stream of a channel.
  void Write(uint32_t channel, uint32_t fd, std::string bytes, bool eof);
  // Bytes written to the agent's stdin as they are, bypassing the mux.
  Status WriteRaw(std::string_view bytes);

  // Pumps both directions until `done()` holds, the agent's stdout ends or
  // `timeout_ms` passes. Returns done().
  bool RunUntil(const std::function<bool()>& done, int timeout_ms = 30000);
  // Sends `exec`, feeds `input` to fd 0 (then Eof if `eof`), and runs until
  // the channel's Exit arrives.
  ChannelLog& Run(const proto::Exec& exec, const std::string& input = "", bool eof = true);

  // Sends `req` and runs until the FsReply with its id arrives; returns it
  // and removes it from fs_replies. nullopt on timeout or when the agent's
  // stdout ends first.
  std::optional<proto::FsReply> FsCall(const proto::FsRequest& req, int timeout_ms = 30000);

  // Closes the agent's stdin (the session ends for it).
  void CloseStdin();
  // Waits (pumping stdout and stderr) for the agent to exit; its wait status,
  // or nullopt after `timeout_ms`.
  std::optional<int> WaitAgent(int timeout_ms = 30000);

  ChannelLog& channel(uint32_t id) { return channels_[id]; }
  // Messages without a channel: PathInfo, Pong, Error without channel.
  std::vector<proto::Message> messages;
  // Every FsReply, in arrival order (FsCall takes its own out again).
  std::vector<proto::FsReply> fs_replies;
  std::string agent_stderr;
  bool hello_received = false;
  std::optional<proto::Hello> peer_hello;  // the agent's Hello
  pid_t agent_pid() const { return pid_; }
  bool stdout_closed() const { return !from_agent_; }

  // proto::MuxDelegate
  void OnHello(const proto::Hello& peer, uint32_t version) override;
  void OnMessage(proto::Message&& m) override;
  void OnData(uint32_t channel, uint32_t fd, std::string_view bytes) override;
  void OnEof(uint32_t channel, uint32_t fd) override;
  void OnWritable(uint32_t channel, uint32_t fd) override;

 private:
  struct Pending {
    std::string bytes;
    size_t off = 0;
    bool eof = false;
  };
  void FlushStream(uint32_t channel, uint32_t fd);
  bool PumpOnce(int timeout_ms);

  proto::Mux mux_;
  pid_t pid_ = -1;
  UniqueFd to_agent_;
  UniqueFd from_agent_;
  UniqueFd agent_err_;
  std::string out_;  // frames not yet written to the agent
  size_t out_off_ = 0;
  std::map<std::pair<uint32_t, uint32_t>, Pending> pending_;
  std::map<uint32_t, ChannelLog> channels_;
  std::optional<int> agent_status_;
  Status feed_status_;
};

}  // namespace mproxy::testing

// SshTransport and its ByteStream: an exec channel whose events are held
// until Start() and never delivered after Close().
#include "broker/ssh_transport.h"

#include <mutex>
#include <utility>
#include <vector>

namespace mproxy::broker {
namespace {

// State shared between the stream and the channel callbacks (which run on
// the connection's thread and may outlive neither).
struct StreamState {
  std::mutex mu;  // serialises callbacks with Start and Close
  bool started = false;
  bool off = false;  // Close() was called: drop everything
  ByteStream::Callbacks cb;
  struct Event {
    int kind;  // 0 stdout, 1 stderr, 2 closed
    std::string bytes;
    Status status;
  };
  std::vector<Event> early;  // events before Start()

  void Deliver(Event e) {
    std::lock_guard<std::mutex> lock(mu);
    if (off) return;
    if (!started) {
      early.push_back(std::move(e));
      return;
    }
    Dispatch(e);
  }
  // Bytes: straight to the callback once started, copied only while they
  // have to wait for Start().
  void DeliverBytes(int kind, std::string_view bytes) {
    std::lock_guard<std::mutex> lock(mu);
    if (off) return;
    if (!started) {
      early.push_back({kind, std::string(bytes), Ok()});
      return;
    }
    if (kind == 0 && cb.on_data) cb.on_data(bytes);
    if (kind == 1 && cb.on_stderr) cb.on_stderr(bytes);
  }
  // The end of one read round of the connection's thread.
  void RoundEnd() {
    std::lock_guard<std::mutex> lock(mu);
    if (off || !started) return;
    if (cb.on_batch_end) cb.on_batch_end();
  }
  void Dispatch(const Event& e) {
    if (e.kind == 0 && cb.on_data) cb.on_data(e.bytes);
    if (e.kind == 1 && cb.on_stderr) cb.on_stderr(e.bytes);
    if (e.kind == 2 && cb.on_closed) cb.on_closed(e.status);
  }
};

class SshStream : public ByteStream {
 public:
  SshStream(SshConnection* connection, SshConnection::ChannelId id,
            std::shared_ptr<StreamState> state)
      : connection_(connection), id_(id), state_(std::move(state)) {}
  ~SshStream() override { Close(); }

  void Start(Callbacks callbacks) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->cb = std::move(callbacks);
    state_->started = true;
    for (const auto& e : state_->early) state_->Dispatch(e);
    if (!state_->early.empty() && state_->cb.on_batch_end) state_->cb.on_batch_end();
    state_->early.clear();
  }

  bool batches_data() const override { return true; }

  void Send(std::string bytes) override { connection_->Send(id_, std::move(bytes)); }

  void Close() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->off) return;
      state_->off = true;
    }
    // EOF first: the agent ends its session on stdin EOF.
    connection_->SendEof(id_);
    connection_->CloseChannel(id_);
  }

 private:
  SshConnection* connection_;
  SshConnection::ChannelId id_;
  std::shared_ptr<StreamState> state_;
};

}  // namespace

Result<std::unique_ptr<SshTransport>> SshTransport::Connect(SshOptions options) {
  auto connection = std::make_unique<SshConnection>(std::move(options));
  if (Status s = connection->Connect(); !s.ok()) return s.error();
  return std::unique_ptr<SshTransport>(new SshTransport(std::move(connection)));
}

std::string SshTransport::Describe() const { return connection_->Describe(); }

Result<CommandResult> SshTransport::Run(const std::string& command, std::string_view input) {
  return connection_->RunCommand(command, input);
}

Result<std::unique_ptr<ByteStream>> SshTransport::Open(const std::string& command) {
  auto state = std::make_shared<StreamState>();
  ExecCallbacks cb;
  cb.on_stdout = [state](std::string_view d) { state->DeliverBytes(0, d); };
  cb.on_stderr = [state](std::string_view d) { state->DeliverBytes(1, d); };
  cb.on_closed = [state](const Status& s) { state->Deliver({2, "", s}); };
  cb.on_round_end = [state] { state->RoundEnd(); };
  auto id = connection_->OpenExec(command, std::move(cb));
  if (!id.ok()) return id.error();
  return std::unique_ptr<ByteStream>(new SshStream(connection_.get(), *id, state));
}

}  // namespace mproxy::broker

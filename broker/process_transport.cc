// ProcessTransport: fork/exec with pipes; a ByteStream served by a writer
// thread and reader threads, so nothing blocks the caller's event loop.
#include "broker/process_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/io.h"

namespace mproxy::broker {
namespace {

struct Child {
  pid_t pid = -1;
  UniqueFd in;   // its stdin (we write)
  UniqueFd out;  // its stdout (we read)
  UniqueFd err;  // its stderr (we read)
};

Result<Child> Spawn(const std::vector<std::string>& argv) {
  auto in = MakePipe();
  auto out = MakePipe();
  auto err = MakePipe();
  if (!in || !out || !err) return Error::FromErrno("pipe2", errno);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Error::FromErrno("fork", errno);
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    dup2(in->first.get(), 0);
    dup2(out->second.get(), 1);
    dup2(err->second.get(), 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(args[0], args.data());
    static const char kMsg[] = "mproxy: cannot execute transport command\n";
    ssize_t ignored = write(2, kMsg, sizeof kMsg - 1);
    (void)ignored;
    _exit(127);
  }
  Child c;
  c.pid = pid;
  c.in = std::move(in->second);
  c.out = std::move(out->first);
  c.err = std::move(err->first);
  return c;
}

int WaitExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// The stream: one thread writes queued bytes to the child's stdin, two read
// its stdout and stderr. Callbacks are serialised by cb_mu_.
class ProcessStream : public ByteStream {
 public:
  explicit ProcessStream(Child child) : child_(std::move(child)) {}
  ~ProcessStream() override { Close(); }

  void Start(Callbacks callbacks) override {
    cb_ = std::move(callbacks);
    writer_ = std::thread([this] { WriterLoop(); });
    out_reader_ = std::thread([this] { ReaderLoop(child_.out.get(), false); });
    err_reader_ = std::thread([this] { ReaderLoop(child_.err.get(), true); });
  }

  void Send(std::string bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.push_back(std::move(bytes));
    cv_.notify_one();
  }

  void Close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      stopping_ = true;
      cv_.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(cb_mu_);
      callbacks_off_ = true;
    }
    if (writer_.joinable()) writer_.join();
    child_.in.Reset();  // EOF: the agent ends its session and exits
    // Give it a moment to exit on its own, then make sure.
    for (int i = 0; i < 200; ++i) {
      int status;
      pid_t r = waitpid(child_.pid, &status, WNOHANG);
      if (r == child_.pid || (r < 0 && errno == ECHILD)) {
        child_.pid = -1;
        break;
      }
      usleep(10000);
    }
    if (child_.pid > 0) {
      kill(child_.pid, SIGKILL);
      WaitExit(child_.pid);
      child_.pid = -1;
    }
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
  }

 private:
  void WriterLoop() {
    for (;;) {
      std::string chunk;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        chunk = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!WriteAll(child_.in.get(), chunk)) {
        Finish(Error("transport: the agent's stdin closed"));
        return;
      }
    }
  }

  void ReaderLoop(int fd, bool is_stderr) {
    std::string buf(256 * 1024, '\0');
    for (;;) {
      auto n = ReadSome(fd, buf.data(), buf.size());
      if (!n || *n == 0) break;
      std::lock_guard<std::mutex> lock(cb_mu_);
      if (callbacks_off_) continue;  // drain so the child never blocks
      auto& f = is_stderr ? cb_.on_stderr : cb_.on_data;
      if (f) f(std::string_view(buf.data(), *n));
    }
    if (!is_stderr) Finish(Error("transport: the agent closed its output"));
  }

  void Finish(const Status& why) {
    std::lock_guard<std::mutex> lock(cb_mu_);
    if (finished_ || callbacks_off_) return;
    finished_ = true;
    if (cb_.on_closed) cb_.on_closed(why);
  }

  Child child_;
  Callbacks cb_;
  std::mutex mu_;  // guards queue_, stopping_, closed_
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  std::mutex cb_mu_;  // serialises callbacks; guards finished_, callbacks_off_
  bool finished_ = false;
  bool callbacks_off_ = false;
  std::thread writer_, out_reader_, err_reader_;
};

}  // namespace

std::vector<std::string> ProcessTransport::Argv(const std::string& command) const {
  std::vector<std::string> argv = prefix_;
  if (argv.empty()) argv.push_back("/bin/sh");
  else argv.push_back("sh");
  argv.push_back("-c");
  argv.push_back(command);
  return argv;
}

std::string ProcessTransport::Describe() const {
  if (prefix_.empty()) return "local";
  std::string s;
  for (const auto& p : prefix_) s += (s.empty() ? "" : " ") + p;
  return s;
}

Result<CommandResult> ProcessTransport::Run(const std::string& command, std::string_view input) {
  auto child = Spawn(Argv(command));
  if (!child) return child.error().Wrap(Describe());
  CommandResult result;
  // poll() over the three pipes so a large input and a large output never
  // deadlock each other.
  fcntl(child->in.get(), F_SETFL, O_NONBLOCK);
  size_t off = 0;
  if (input.empty()) child->in.Reset();
  char buf[65536];
  while (child->out.valid() || child->err.valid()) {
    pollfd fds[3];
    int n = 0;
    int in_i = -1, out_i = -1, err_i = -1;
    if (child->in.valid()) fds[in_i = n++] = {child->in.get(), POLLOUT, 0};
    if (child->out.valid()) fds[out_i = n++] = {child->out.get(), POLLIN, 0};
    if (child->err.valid()) fds[err_i = n++] = {child->err.get(), POLLIN, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno("poll", errno);
    }
    if (in_i >= 0 && fds[in_i].revents) {
      ssize_t w = write(child->in.get(), input.data() + off, input.size() - off);
      if (w > 0) off += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) off = input.size();
      if (off == input.size()) child->in.Reset();
    }
    for (auto [i, fd, dst] : {std::tuple{out_i, &child->out, &result.out},
                              std::tuple{err_i, &child->err, &result.err}}) {
      if (i < 0 || !fds[i].revents) continue;
      auto r = ReadSome(fd->get(), buf, sizeof buf);
      if (!r || *r == 0) {
        fd->Reset();
      } else {
        dst->append(buf, *r);
      }
    }
  }
  child->in.Reset();
  result.exit_code = WaitExit(child->pid);
  return result;
}

Result<std::unique_ptr<ByteStream>> ProcessTransport::Open(const std::string& command) {
  auto child = Spawn(Argv(command));
  if (!child) return child.error().Wrap(Describe());
  return std::unique_ptr<ByteStream>(std::make_unique<ProcessStream>(std::move(*child)));
}

}  // namespace mproxy::broker

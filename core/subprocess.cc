#include "core/subprocess.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

namespace loom {

int RunCommand(const std::vector<std::string>& argv, const std::string& log, bool append) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (FILE* f = std::fopen(log.c_str(), append ? "a" : "w")) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    std::vector<char*> c;
    for (const auto& s : argv) c.push_back(const_cast<char*>(s.c_str()));
    c.push_back(nullptr);
    execvp(c[0], c.data());
    std::perror("exec");
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace loom

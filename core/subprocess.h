// Running a child process with its output captured in a log file (fork + execvp + waitpid).
//
//   int rc = RunCommand({"python3", "plot.py", dir}, dir + "/plot.log");
#ifndef LOOM_CORE_SUBPROCESS_H_
#define LOOM_CORE_SUBPROCESS_H_

#include <string>
#include <vector>

namespace loom {

// stdout and stderr go to `log` (appended to, or truncated when `append` is false). Returns the
// exit status, 128 + the signal number if the child was killed, 127 if it could not be executed
// and -1 if no child could be started.
int RunCommand(const std::vector<std::string>& argv, const std::string& log, bool append = true);

}  // namespace loom

#endif  // LOOM_CORE_SUBPROCESS_H_

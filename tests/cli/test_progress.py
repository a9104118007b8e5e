"""Progress into a log file or pipe: plain periodic lines, no carriage-return frames."""

import io

from anomask.progress import Progress


class _Log(io.StringIO):
    def isatty(self):
        return False


def test_progress_into_a_log_file_is_plain_lines():
    log = _Log()
    progress = Progress("closed-set", 40, 0, True, log)
    for i in range(40):
        progress.update(1.0 / (i + 1))
    progress.write("validation: miou=0.5")
    progress.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 21 and lines[0].startswith("[closed-set] iteration 2/40, loss 0.500, ")
    assert lines[-2].startswith("[closed-set] iteration 40/40, loss 0.025, ") and lines[-1] == "validation: miou=0.5"

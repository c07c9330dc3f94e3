"""The one exception a person is meant to read."""


class UserError(Exception):
    """Bad input or an impossible request, with a message that says what to do.

    The command line prints it as one line and exits non-zero; the app shows it
    next to the input it concerns. Anything else escaping is a bug.
    """


# What the system says about files, as a person can act on it (no errno, no server path).
_OS_ERRORS = {
    28: "The disk is full: free some space (old runs can be deleted on the Runs page), then try again.",
    30: "The folder is read-only here: choose a folder this program may write to, or ask whoever runs "
        "the server to make it writable.",
    13: "Permission denied: this program may not read or write that file or folder.",
    1: "Permission denied: this program may not read or write that file or folder.",
    122: "The disk quota is used up: free some space, then try again.",
    24: "Too many files are open at once: try again in a moment.",
    36: "A file name is too long for this file system.",
}


def plain_words(exc: BaseException) -> str:
    """One sentence for a failure that is not a UserError: what happened and what to do, no traceback.

    The details (path, errno, traceback) belong in the log, not in front of a person.
    """
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "The machine ran out of memory: try a smaller batch, smaller images or fewer images at once."
    if isinstance(exc, FileNotFoundError):
        return "A file it needed is gone (moved or deleted meanwhile): check the paths and try again."
    if isinstance(exc, OSError) and exc.errno in _OS_ERRORS:
        return _OS_ERRORS[exc.errno]
    text = str(exc)
    # torch.save reports a full disk from its C++ zip writer, not as an OSError
    if "No space left on device" in text or ("inline_container" in text and "enforce fail" in text):
        return _OS_ERRORS[28]
    if isinstance(exc, OSError):
        return f"The system refused a file operation ({exc.strerror or type(exc).__name__}): check the disk and folders."
    return f"Something went wrong inside Siamese Studio ({type(exc).__name__}): the log has the details."

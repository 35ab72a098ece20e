"""python -m grader.kernel -f CONNECTION_FILE: an IPython kernel inside the grading sandbox.

The grader starts every grading kernel this way (grader.sandbox.BwrapKernelManager). Before
ipykernel starts any thread, the process confines itself as MAKEMORE_GUARD says (resource
limits, Landlock: see grader.guard); the rest of the guard runs in the kernel at start-up.
"""
import json
import os
import sys


def _connection_file(argv):
    for i, arg in enumerate(argv):
        if arg == "-f" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--f="):
            return arg[4:]
    return None


def main():
    import warnings
    from .guard import _setup, confine_process
    # the sandbox refuses ipykernel's extra port for subprocess output: there are no subprocesses
    warnings.filterwarnings("ignore", message="Couldn't bind IOPub Pipe")
    sandbox = _setup().get("sandbox")
    if sandbox:
        path = _connection_file(sys.argv)
        info = json.load(open(path)) if path else {}
        if info.get("transport") == "ipc":   # the sockets' folder, in the sandbox's own /tmp
            os.makedirs(os.path.dirname(info["ip"]), exist_ok=True)
            ports = []
        else:
            ports = [v for k, v in info.items() if k.endswith("_port")]
        if path:
            sandbox = {**sandbox, "readable": [*sandbox["readable"], path]}
        confine_process(sandbox, ports)
    from ipykernel import kernelapp
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()

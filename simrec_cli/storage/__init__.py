"""The one writer: every file and folder a command writes goes through here.

`targets` checks an output path before any work is done (a device, a FIFO, a socket, a folder or a link to one
is refused, as is a folder that cannot be written); `atomic` writes a file to a temporary beside it and renames
it into place, so a failure leaves the old file or the new one; `owned` decides whether an existing folder is
provably ours to replace (its marker file and nothing else); `outputs` stages all outputs of one command and
commits them together; `failures` turns a file-system error into one line naming the file and the fix.
"""

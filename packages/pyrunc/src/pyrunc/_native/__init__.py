"""The C side and the two modules that call it: :mod:`.kernel` (native.c: the child between clone and
exec) and :mod:`.libseccomp` (seccomp.c: filters built in the parent). native.h says what lives in C
and why."""

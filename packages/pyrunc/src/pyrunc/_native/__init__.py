"""The cffi extension: see native.h for what lives in C and why."""

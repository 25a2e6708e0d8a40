#!/bin/sh
# fixture: never run
echo libc

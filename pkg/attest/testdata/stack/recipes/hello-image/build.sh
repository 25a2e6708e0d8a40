#!/bin/sh
# fixture: never run
echo hello-image

#!/bin/sh
# fixture: never run
echo tool

#!/bin/sh
# One HTTP/1.1 connection on stdin/stdout (run by busybox `nc -ll -e`, a process per
# connection): GET /up, /version, /bytes/N (N zero bytes), and WebSocket upgrades (RFC 6455
# handshake with its Sec-WebSocket-Accept), after which each line the client sends comes back
# prefixed with this container's version, until the client closes.
v=${KAMAL_VERSION:-unknown}
cr=$(printf '\r')
read -r method path _ || exit 0
upgrade= key=
while read -r line; do
  line=${line%"$cr"}
  [ -z "$line" ] && break
  lower=$(printf '%s' "$line" | tr 'A-Z' 'a-z')
  case "$lower" in
    upgrade:*websocket*) upgrade=1 ;;
    sec-websocket-key:*) key=$(printf '%s' "${line#*:}" | tr -d ' ') ;;
  esac
done
reply() {
  printf 'HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' "$1" "$2"
}
if [ -n "$upgrade" ]; then
  hex=$(printf '%s' "${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11" | sha1sum | cut -c1-40)
  accept=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | base64)
  printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n' "$accept"
  while read -r msg; do printf '%s %s\n' "$v" "$msg"; done
  exit 0
fi
case "$path" in
  /up) reply '200 OK' 3; printf 'OK\n' ;;
  /version) reply '200 OK' $((${#v} + 1)); printf '%s\n' "$v" ;;
  /bytes/*) n=${path#/bytes/}; reply '200 OK' "$n"; head -c "$n" /dev/zero ;;
  *) reply '404 Not Found' 0 ;;
esac

#!/usr/bin/env bash
# Write .env from .env.example, filling every empty secret with a fresh random value.
# Usage: deploy/make-env.sh [TARGET]   (default .env; refuses to overwrite an existing file)
# Values are hex or URL-safe base64, so they can sit inside the connection URLs compose builds.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-.env}"
if [ -e "$target" ]; then
  echo "error: $target exists; edit it, or remove it first" >&2
  exit 1
fi
command -v openssl >/dev/null || { echo "error: openssl is required" >&2; exit 1; }
umask 077
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    AIRFLOW_FERNET_KEY=)
      # Fernet wants 32 random bytes, URL-safe base64.
      echo "AIRFLOW_FERNET_KEY=$(openssl rand -base64 32 | tr '+/' '-_')" ;;
    *_PASSWORD=|*_SECRET=|*_SECRET_KEY=)
      echo "${line}$(openssl rand -hex 24)" ;;
    *) echo "$line" ;;
  esac
done < .env.example > "$target"
echo "wrote $target (mode 600); review it, then: docker compose up -d"

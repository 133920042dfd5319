#!/bin/sh
# Managed by keel (role certbot): certbot runs this after it renewed a certificate, so that
# nginx serves the new one. A config nginx -t refuses is left alone (nginx keeps running).
nginx -t -q && systemctl reload nginx

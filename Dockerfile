# The example app dray's demo deploys (see deploy.yml and scripts/demo).
# Its base image is made by scripts/fleet (busybox-static, `docker import`) and pushed to the fleet's
# registry: nothing is pulled from Docker Hub.
FROM 127.0.0.1:5000/dray-base:busybox
COPY example/start /app/start
EXPOSE 80
# 1 s interval: readiness waits stay short and deterministic.
HEALTHCHECK --interval=1s --timeout=1s --start-period=10s --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1/up || exit 1
CMD ["/app/start", "web"]

#!/usr/bin/env bash
# Writes the plain Kubernetes manifests of this folder from the Helm chart
# (deploy/helm/ringcast, default values, release name ringcast), one file
# per template, without Helm's bookkeeping labels: one source for both.
#
#   deploy/k8s/generate.sh RENDERER [OUTDIR]     (make k8s-manifests)
#
# RENDERER is `helm` if you have it, or build/helmrender (make
# build/helmrender: the same template engine, see deploy/README.md).
# tests/integration/test_deploy_k8s.py checks the files match the chart.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
render="$1" out="${2:-$here}"
case "$(basename "$render")" in
helm) cmd=("$render" template ringcast "$here/../helm/ringcast") ;;
*) cmd=("$render" --name ringcast "$here/../helm/ringcast") ;;
esac
"${cmd[@]}" | awk -v out="$out" '
	/^# Source: / { n = split($3, p, "/"); file = out "/" p[n]
		print "# Generated from deploy/helm/ringcast (templates/" p[n] ") by" > file
		print "# deploy/k8s/generate.sh: edit the chart, then run make k8s-manifests." > file
		next }
	/^---$/ { next }
	/app\.kubernetes\.io\/managed-by: |helm\.sh\/chart: / { next }
	{ print > file }'

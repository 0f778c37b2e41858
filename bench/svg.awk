# svg.awk: draws docs/bench/results.svg for bench/run.sh, by hand (no plotting tools).
#
#   awk -f bench/svg.awk -v tput=.. -v tput_runs="a b c" -v target_tput=.. -v py_batched=..
#       -v py_single=.. -v p50=.. -v p90=.. -v p99=.. -v pmax=.. -v target_p99=.. -v py_p99=..
#       -v py_rate=.. -v ref_p99=.. [-v lat_end="its commit"] -v rate=.. [-v saga_tput=..] -v achieved=.. -v replay=.. -v target_replay=.. -v machine=..
#       [-v orders_tput=.. -v orders_runs="a b c" -v target_orders_tput=.. -v orders_p99=..
#        -v orders_p50=.. -v orders_rate=.. -v target_orders_p99=..]
#       latency.txt > results.svg
#
# Input: one latency in ms a line (the fixed-rate run), sorted ascending. Output: three panels:
# throughput bars against the target and the Python references (each run as a dot), p99 latency
# and replay bars against theirs, the latency histogram of the fixed-rate run with its CDF, and
# (with orders_tput) the shop's orders throughput and p99 against their targets.

function esc(s) {
    gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s)
    return s
}
function fmt(v,  s, out) { # 12345 -> "12,345"; below 1,000 as given
    if (v + 0 < 1000) return v ""
    s = sprintf("%.0f", v); out = ""
    while (length(s) > 3) {
        out = "," substr(s, length(s) - 2) out
        s = substr(s, 1, length(s) - 3)
    }
    return s out
}
function text(x, y, s, attrs) {
    printf "<text x=\"%.1f\" y=\"%.1f\" %s>%s</text>\n", x, y, attrs, esc(s)
}
function rect(x, y, w, h, attrs) {
    printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" %s/>\n", x, y, w, h, attrs
}
function line(x1, y1, x2, y2, attrs) {
    printf "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>\n", x1, y1, x2, y2, attrs
}
# A nice round axis maximum at or above v.
function nice(v,  p, m) {
    if (v <= 0) return 1
    p = 1
    while (p * 10 <= v) p *= 10
    while (p > v) p /= 10
    m = v / p
    if (m <= 1) return p
    if (m <= 2) return 2 * p
    if (m <= 2.5) return 2.5 * p
    if (m <= 4) return 4 * p
    if (m <= 5) return 5 * p
    if (m <= 6) return 6 * p
    if (m <= 8) return 8 * p
    return 10 * p
}
# Horizontal bars: labels[i], vals[i], kinds[i] ("ours", "target", "ref"), n of them, drawn in
# the box (x, y, w) with bar height bh; `unit` follows each value.
function hbars(x, y, w, n, labels, vals, kinds, unit,  i, m, sx, by, bw, lw, attrs) {
    m = 0
    for (i = 1; i <= n; i++) if (vals[i] > m) m = vals[i]
    m = nice(m * 1.05)
    lw = 150
    sx = (w - lw - 90) / m
    for (i = 1; i <= n; i++) {
        by = y + (i - 1) * 34
        text(x + lw - 8, by + 17, labels[i], "text-anchor=\"end\" class=\"lab\"")
        bw = vals[i] * sx
        if (kinds[i] == "ours") attrs = "class=\"ours\""
        else if (kinds[i] == "target") attrs = "class=\"target\""
        else if (kinds[i] == "saga") attrs = "class=\"saga\""
        else attrs = "class=\"ref\""
        rect(x + lw, by + 3, bw < 1 ? 1 : bw, 22, attrs)
        if (ext[i] * sx > bw) bw = ext[i] * sx # keep the value clear of the run dots
        text(x + lw + bw + 8, by + 19, fmt(vals[i]) unit, "class=\"val\"")
    }
    return sx
}

{ lat[++cnt] = $1 + 0 }

END {
    W = 960; H = 792
    shop = orders_tput != ""
    if (shop) H = 792 + 190
    # the CPU an order costs, by process (bench/run.sh's cpu-split.txt: name, transfers at the
    # fixed rate, orders at full speed, orders at the fixed rate)
    ncpu = 0
    while (shop && cpu_split != "" && (getline ln < cpu_split) > 0) {
        split(ln, a, " ")
        if (a[3] + 0 <= 0 && a[4] + 0 <= 0) continue
        ncpu++; cpu_name[ncpu] = a[1]; cpu_full[ncpu] = a[3] + 0; cpu_rate[ncpu] = a[4] + 0
        if (a[3] + 0 > cpu_fmax) cpu_fmax = a[3] + 0
        if (a[4] + 0 > cpu_rmax) cpu_rmax = a[4] + 0
        cpu_ftot += a[3]; cpu_rtot += a[4]
    }
    if (ncpu) H += 50 + ncpu * 18
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n", W, H, W, H
    print "<style>"
    print ".title{font-size:20px;font-weight:bold;fill:#222}.sub{font-size:12px;fill:#666}"
    print ".h{font-size:15px;font-weight:bold;fill:#222}.lab{font-size:12px;fill:#333}"
    print ".val{font-size:12px;fill:#222}.tick{font-size:11px;fill:#666}"
    print ".ours{fill:#2b7bb9}.target{fill:none;stroke:#555;stroke-width:1.5;stroke-dasharray:5 3}"
    print ".ref{fill:#e8a33d}.saga{fill:#2b7bb9;fill-opacity:0.35}.hist{fill:#2b7bb9;fill-opacity:0.75}.grid{stroke:#e3e3e3}"
    print ".cdf{fill:none;stroke:#c0392b;stroke-width:2}.mark{stroke-width:1.5;stroke-dasharray:4 3}"
    print "</style>"
    rect(0, 0, W, H, "fill=\"#ffffff\"")
    text(30, 34, shop ? "es platform: transfer and order saga benchmark" : "es platform: transfer saga benchmark", "class=\"title\"")
    text(30, 54, machine, "class=\"sub\"")

    # Panel 1: throughput.
    text(30, 92, "End-to-end throughput (transfers/s, higher is better)", "class=\"h\"")
    labels[1] = "ours (median)"; vals[1] = tput; kinds[1] = "ours"
    labels[2] = "target"; vals[2] = target_tput; kinds[2] = "target"
    labels[3] = "Python, batched"; vals[3] = py_batched; kinds[3] = "ref"
    labels[4] = "Python, 1 tx/msg"; vals[4] = py_single; kinds[4] = "ref"
    nb1 = 4
    if (saga_tput != "") {
        labels[5] = "ours, saga only"; vals[5] = saga_tput; kinds[5] = "saga"; nb1 = 5
    }
    nr = split(tput_runs, runs, " ")
    for (i = 1; i <= nr; i++) if (runs[i] > ext[1]) ext[1] = runs[i]
    sx = hbars(30, 104, 450, nb1, labels, vals, kinds, "")
    delete ext
    for (i = 1; i <= nr; i++)
        printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#fff\" stroke=\"#123\" stroke-width=\"1.2\"><title>run %d: %s transfers/s</title></circle>\n", 30 + 150 + runs[i] * sx, 104 + 14, i, runs[i]
    text(180, 104 + nb1 * 34 + 12, "dots: each run; dashed: target; saga only: until the last", "class=\"sub\"")
    text(180, 104 + nb1 * 34 + 26, "terminal event, before the projector made it visible", "class=\"sub\"")

    # Panel 2: p99 latency and replay.
    text(500, 92, "p99 send-to-visible latency (ms, lower is better)", "class=\"h\"")
    delete labels; delete vals; delete kinds
    labels[1] = "ours at " fmt(rate) "/s"; vals[1] = p99; kinds[1] = "ours"
    labels[2] = "target"; vals[2] = target_p99; kinds[2] = "target"
    labels[3] = "ours at " fmt(py_rate) "/s"; vals[3] = ref_p99; kinds[3] = "ours"
    labels[4] = "Python at " fmt(py_rate) "/s"; vals[4] = py_p99; kinds[4] = "ref"
    hbars(500, 104, 440, 4, labels, vals, kinds, " ms")
    text(500, 250, "Replay decode rate (events/s, higher is better)", "class=\"h\"")
    delete labels; delete vals; delete kinds
    labels[1] = "ours (median)"; vals[1] = replay; kinds[1] = "ours"
    labels[2] = "target"; vals[2] = target_replay; kinds[2] = "target"
    hbars(500, 262, 440, 2, labels, vals, kinds, "")

    # Panel 3: latency histogram and CDF of the fixed-rate run.
    px = 70; py = 376; pw = 820; ph = 320
    text(30, 346, sprintf("Send-to-visible latency at %s/s (achieved %s/s, %s transfers)", fmt(rate), achieved, fmt(cnt)), "class=\"h\"")
    if (cnt == 0) {
        text(px, py + 40, "no latency samples", "class=\"lab\"")
        print "</svg>"
        exit
    }
    hi = p99 * 1.6
    if (hi < target_p99 * 1.2) hi = target_p99 * 1.2
    hi = nice(hi)
    nb = 60; bw = hi / nb
    over = 0
    for (i = 1; i <= cnt; i++) {
        b = int(lat[i] / bw)
        if (lat[i] < 0) b = 0
        if (b >= nb) over++
        else c[b]++
    }
    m = 0
    for (b = 0; b < nb; b++) if (c[b] > m) m = c[b]
    ym = nice(m)
    # grid and axes
    for (k = 0; k <= 5; k++) {
        gy = py + ph - k * ph / 5
        line(px, gy, px + pw, gy, "class=\"grid\"")
        text(px - 6, gy + 4, fmt(ym * k / 5), "text-anchor=\"end\" class=\"tick\"")
        text(px + pw + 6, gy + 4, (k * 20) "%", "class=\"tick\"")
    }
    for (k = 0; k <= 10; k++) {
        gx = px + k * pw / 10
        line(gx, py + ph, gx, py + ph + 5, "stroke=\"#666\"")
        text(gx, py + ph + 18, sprintf("%g", hi * k / 10), "text-anchor=\"middle\" class=\"tick\"")
    }
    text(px + pw / 2, py + ph + 36, "ms from send (es-loadgen) to " (lat_end != "" ? lat_end : "visible_at") " in projections.transfers", "text-anchor=\"middle\" class=\"lab\"")
    printf "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-90 %.1f %.1f)\" text-anchor=\"middle\" class=\"lab\">transfers per %.3g ms bin</text>\n", px - 48, py + ph / 2, px - 48, py + ph / 2, bw
    printf "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(90 %.1f %.1f)\" text-anchor=\"middle\" class=\"lab\" fill=\"#c0392b\">cumulative share</text>\n", px + pw + 44, py + ph / 2, px + pw + 44, py + ph / 2
    for (b = 0; b < nb; b++) {
        if (!c[b]) continue
        h = c[b] / ym * ph
        rect(px + b * pw / nb + 0.5, py + ph - h, pw / nb - 1, h, "class=\"hist\"")
    }
    line(px, py + ph, px + pw, py + ph, "stroke=\"#666\"")
    line(px, py, px, py + ph, "stroke=\"#666\"")
    # CDF: the cumulative share at each bin's right edge (samples are sorted: walk them once).
    printf "<polyline class=\"cdf\" points=\"%.1f,%.1f", px, py + ph
    j = 0
    for (b = 1; b <= nb; b++) {
        while (j < cnt && lat[j + 1] < b * bw) j++
        printf " %.1f,%.1f", px + b * pw / nb, py + ph - j / cnt * ph
    }
    print "\"/>"
    # markers: percentiles and the target
    mk["p50"] = p50; mk["p90"] = p90; mk["p99"] = p99; mk["target p99"] = target_p99
    col["p50"] = "#1a5276"; col["p90"] = "#1a5276"; col["p99"] = "#c0392b"; col["target p99"] = "#555"
    order[1] = "p50"; order[2] = "p90"; order[3] = "p99"; order[4] = "target p99"; n_mk = 4
    for (i = 1; i <= n_mk; i++) {
        name = order[i]; v = mk[name]
        if (v > hi) continue
        mx = px + v / hi * pw
        line(mx, py - 4, mx, py + ph, "class=\"mark\" stroke=\"" col[name] "\"")
        text(mx + 3, py + 8 + i * 13, name " " v " ms", "class=\"tick\" fill=\"" col[name] "\"")
    }
    if (over > 0)
        text(px + pw - 4, py + 14, sprintf("%s beyond %g ms (max %s ms)", fmt(over), hi, pmax), "text-anchor=\"end\" class=\"lab\"")
    if (shop) {
        # Panel 4: the shop.
        sy = 784
        text(30, sy, "The shop: orders/s end to end (higher is better)", "class=\"h\"")
        delete labels; delete vals; delete kinds; delete ext
        labels[1] = "ours (median)"; vals[1] = orders_tput; kinds[1] = "ours"
        labels[2] = "target"; vals[2] = target_orders_tput; kinds[2] = "target"
        nr = split(orders_runs, oruns, " ")
        for (i = 1; i <= nr; i++) if (oruns[i] > ext[1]) ext[1] = oruns[i]
        osx = hbars(30, sy + 12, 450, 2, labels, vals, kinds, "")
        delete ext
        for (i = 1; i <= nr; i++)
            printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#fff\" stroke=\"#123\" stroke-width=\"1.2\"><title>run %d: %s orders/s</title></circle>\n", 30 + 150 + oruns[i] * osx, sy + 12 + 14, i, oruns[i]
        text(500, sy, "p99 placed-to-visible (ms, lower is better)", "class=\"h\"")
        delete labels; delete vals; delete kinds
        labels[1] = "ours at " fmt(orders_rate) "/s"; vals[1] = orders_p99; kinds[1] = "ours"
        labels[2] = "target"; vals[2] = target_orders_p99; kinds[2] = "target"
        hbars(500, sy + 12, 440, 2, labels, vals, kinds, " ms")
        text(180, sy + 98, "orders of two lines; dots: each run. An order crosses ten hops (orders, catalog, payments, the ledger's", "class=\"sub\"")
        text(180, sy + 112, "transfer saga, payments, orders, the shop projector); p50 at " fmt(orders_rate) "/s: " orders_p50 " ms.", "class=\"sub\"")
    }
    if (ncpu) {
        # Panel 5: where an order's CPU goes, at full speed and at the fixed rate.
        cy = 930
        text(30, cy, "Where an order's CPU goes (ms of CPU per order, by process; pg: the PostgreSQL backend of a service)", "class=\"h\"")
        text(180, cy + 20, sprintf("at full speed (the last run): %.2f ms in all", cpu_ftot), "class=\"lab\"")
        text(650, cy + 20, sprintf("at %s orders/s: %.2f ms in all", fmt(orders_rate), cpu_rtot), "class=\"lab\"")
        for (i = 1; i <= ncpu; i++) {
            ry = cy + 30 + (i - 1) * 18
            text(172, ry + 12, cpu_name[i], "text-anchor=\"end\" class=\"lab\"")
            bw = cpu_fmax > 0 ? cpu_full[i] / cpu_fmax * 250 : 0
            rect(180, ry + 2, bw < 1 ? 1 : bw, 13, "class=\"ours\"")
            text(180 + bw + 6, ry + 12, sprintf("%.3f", cpu_full[i]), "class=\"tick\"")
            bw = cpu_rmax > 0 ? cpu_rate[i] / cpu_rmax * 230 : 0
            rect(650, ry + 2, bw < 1 ? 1 : bw, 13, "class=\"saga\"")
            text(650 + bw + 6, ry + 12, sprintf("%.3f", cpu_rate[i]), "class=\"tick\"")
        }
    }
    text(30, H - 30, sprintf("Fixed-rate run: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms. Reference: the tutorial-style Python saga on", p50, p90, p99, pmax), "class=\"sub\"")
    text(30, H - 14, "this machine (one transaction per message, batched; p99 at " py_rate "/s). Drawn by bench/run.sh with bench/svg.awk.", "class=\"sub\"")
    print "</svg>"
}

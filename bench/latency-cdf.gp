# Latency CDF of the wake and cli sections (bench/plot.sh writes the data and calls this).
# Variables (gnuplot -e): files = data files separated by spaces, each "<us> <fraction>"
# lines after a quoted title line; colors = one "#rrggbb" per file; outfile; titletext.
set terminal svg size 900,680 dynamic noenhanced font "sans,13" background rgb "white"
set output outfile
set title titletext
set logscale x 10
set format x "%g"
set xlabel "one-way latency (µs, log scale)"
set ylabel "fraction of samples at or below"
set yrange [0:1]
set ytics 0.1
set mxtics 10
set grid xtics mxtics ytics lc rgb "#dddddd" lw 1, lc rgb "#eeeeee" lw 0.5
set border 3
set xtics nomirror
set ytics nomirror
set key outside bottom center vertical Left reverse maxrows 6 samplen 3 spacing 1.15
# Guides at p50 and p99.
set arrow 1 from graph 0, first 0.5 to graph 1, first 0.5 nohead dt 2 lc rgb "#999999"
set arrow 2 from graph 0, first 0.99 to graph 1, first 0.99 nohead dt 2 lc rgb "#999999"
set label 1 "p50" at graph 0.01, first 0.5 offset 0,0.6 tc rgb "#777777"
set label 2 "p99" at graph 0.01, first 0.99 offset 0,-0.7 tc rgb "#777777"
plot for [i=1:words(files)] word(files, i) using 1:2 with steps lw 2.2 \
    lc rgb word(colors, i) title columnheader(1)

# Throughput bar chart of the append section (bench/plot.sh writes the data and calls this).
# Variables (gnuplot -e): datafile with "<y> <value> <color 0xRRGGBB as a number> \"<label>\""
# rows (y = bar position, top to bottom); outfile; titletext; xmax (in millions);
# ymax (largest y); height (pixels).
set terminal svg size 900,height dynamic noenhanced font "sans,13" background rgb "white"
set output outfile
set title titletext
set xlabel "million lines (records) per second, median of the repetitions"
set xrange [0:xmax]
set yrange [ymax + 0.7:-0.7]
set ytics nomirror scale 0
set xtics nomirror
set grid xtics lc rgb "#dddddd"
set border 1
set style fill solid 0.9 noborder
set key off
plot datafile using (0):1:(0):($2 / 1e6):($1 - 0.38):($1 + 0.38):3:ytic(4) \
        with boxxyerror lc rgb variable, \
     datafile using ($2 / 1e6):1:(sprintf("  %.3g M/s", $2 / 1e6)) with labels left \
        tc rgb "#333333"

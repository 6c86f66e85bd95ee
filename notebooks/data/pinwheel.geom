; crystream notebook detector: four 200 x 176 modules in a pinwheel around the beam,
; each rotated by 90 degrees from the last, 100 um pixels, 90 mm from the sample.
; The beam hole is not centred on the modules (corners shifted by -7, +4 pixels),
; and module m2 sits 0.4 mm further back.
photon_energy = 12000 eV
clen = 0.090 m
bandwidth = 0.002
res = 10000            ; 100 um pixels
adu_per_photon = 1
data = /data/data

; all modules read from one 704 x 200 slab (ss x fs), stacked along ss
m0/min_fs = 0
m0/max_fs = 199
m0/min_ss = 0
m0/max_ss = 175
m0/corner_x = -19
m0/corner_y = 16
m0/fs = +1.0x +0.0y
m0/ss = +0.0x +1.0y

m1/min_fs = 0
m1/max_fs = 199
m1/min_ss = 176
m1/max_ss = 351
m1/corner_x = -19
m1/corner_y = -8
m1/fs = +0.0x +1.0y
m1/ss = -1.0x +0.0y

m2/min_fs = 0
m2/max_fs = 199
m2/min_ss = 352
m2/max_ss = 527
m2/corner_x = 5
m2/corner_y = -8
m2/fs = -1.0x +0.0y
m2/ss = +0.0x -1.0y
m2/coffset = 0.0004

m3/min_fs = 0
m3/max_fs = 199
m3/min_ss = 528
m3/max_ss = 703
m3/corner_x = 5
m3/corner_y = 16
m3/fs = +0.0x -1.0y
m3/ss = +1.0x +0.0y

; beamstop shadow: 20 pixels either side of the beam, in lab pixel units
bad_beamstop/min_x = -20
bad_beamstop/max_x = 20
bad_beamstop/min_y = -20
bad_beamstop/max_y = 20

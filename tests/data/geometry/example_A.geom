; test detector A: one 1024x1024 panel, 75 um pixels, beam centred
photon_energy = 12400 eV
clen = 0.120 m
bandwidth = 1.0e-8
res = 13333.333        ; 1 / 75e-6 m
adu_per_photon = 1.0
data = /entry/data/data

det0/min_fs = 0
det0/max_fs = 1023
det0/min_ss = 0
det0/max_ss = 1023
det0/corner_x = -512.0
det0/corner_y = -512.0
det0/fs = +1.0x +0.0y
det0/ss = +0.0x +1.0y
det0/coffset = 0.0

bad_beamstop/min_x = -12.0
bad_beamstop/max_x = 12.0
bad_beamstop/min_y = -12.0
bad_beamstop/max_y = 12.0

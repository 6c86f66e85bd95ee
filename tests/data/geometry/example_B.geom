; test detector B: 2x2 quadrants in a single 512x512 slab
wavelength = 1.0 A
clen = 100 mm
res = 10000            ; 100 um pixels
adu_per_eV = 0.001     ; 12.398 ADU/photon at 1 A
max_adu = 60000
flag_morethan = 65000
mask_edge_pixels = 1
data = /data/data
mask0_data = /data/mask
mask0_goodbits = 0x0
mask0_badbits = 0xff

q0/min_fs = 0
q0/max_fs = 255
q0/min_ss = 0
q0/max_ss = 255
q0/corner_x = -261
q0/corner_y = -261
q0/fs = x
q0/ss = y

q1/min_fs = 256
q1/max_fs = 511
q1/min_ss = 0
q1/max_ss = 255
q1/corner_x = 5
q1/corner_y = -261
q1/fs = x
q1/ss = y

q2/min_fs = 0
q2/max_fs = 255
q2/min_ss = 256
q2/max_ss = 511
q2/corner_x = -261
q2/corner_y = 5
q2/fs = x
q2/ss = y

q3/min_fs = 256
q3/max_fs = 511
q3/min_ss = 256
q3/max_ss = 511
q3/corner_x = 5
q3/corner_y = 5
q3/fs = x
q3/ss = y
q3/coffset = 0.0005    ; this panel is 0.5 mm further back

bad_col/panel = q1
bad_col/min_fs = 300   ; data (slab) coordinates, inclusive
bad_col/max_fs = 301
bad_col/min_ss = 0
bad_col/max_ss = 255

group_bottom = q0,q1
group_top = q2,q3
group_all = bottom,top

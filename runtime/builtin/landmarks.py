"""Named index sets of the 468/478-point face mesh (MediaPipe's topology)."""
from __future__ import annotations

LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291, 78, 308)

# subject's right eye is on the image left
RIGHT_EYE_UPPER = ((246, 161, 160, 159, 158, 157, 173),   # lid margin
                   (247, 30, 29, 27, 28, 56, 190),        # just above
                   (113, 225, 224, 223, 222, 221, 189))   # crease
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = ((466, 388, 387, 386, 385, 384, 398),
                  (467, 260, 259, 257, 258, 286, 414),
                  (342, 445, 444, 443, 442, 441, 413))
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
RIGHT_IRIS = tuple(range(468, 473))
LEFT_IRIS = tuple(range(473, 478))

RIGHT_BROW = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
LEFT_BROW = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
BROW_INNER = (107, 66, 55, 65, 336, 296, 285, 295)

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
CHIN = 152
NOSE_TIP = 1
FOREHEAD = 10

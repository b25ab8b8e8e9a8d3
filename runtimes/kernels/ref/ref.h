/* Internal to the reference tier (and to tests that decode blocks the same way). */
#ifndef EDGEQ_REF_H
#define EDGEQ_REF_H

#include "../kernels.h"
#include "edgeq/edgeq_blob.h"

/* Integer values of block b of row r (w->block of them). */
void eq_ref_decode_block(const eq_weights_t *w, int r, int b, int8_t *out);

#endif

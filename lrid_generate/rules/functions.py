"""Autograd functions of the FA / IA layers: feedback backward passes and the IA local loss node.

Each sets ``generate_vmap_rule``: its forward and backward use only torch
operations, so :func:`torch.func.vmap` (packed training,
:mod:`lrid_generate.packed`) batches them like any other operation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _FeedbackLinearFunction(torch.autograd.Function):
    """``y = x W^T + b``; backward sends ``dy B`` to ``x``, ordinary grads to W, b."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias, feedback):
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):  # separate, so torch.func transforms work
        x, weight, bias, feedback = inputs
        ctx.save_for_backward(x, feedback)
        ctx.weight_dtype = weight.dtype
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.to(feedback.dtype).matmul(feedback).to(x.dtype)
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            g2 = grad_out.reshape(-1, grad_out.shape[-1]).to(ctx.weight_dtype)
            if ctx.needs_input_grad[1]:
                x2 = x.reshape(-1, x.shape[-1]).to(ctx.weight_dtype)
                grad_w = g2.t().matmul(x2)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_b = g2.sum(0).to(ctx.bias_dtype)
        return grad_x, grad_w, grad_b, None


class _FeedbackConv2dFunction(torch.autograd.Function):
    """2-D convolution whose input gradient uses the feedback kernel (groups=1)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias, feedback, stride, padding, dilation):
        return F.conv2d(x, weight, bias, stride, padding, dilation, 1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, feedback, stride, padding, dilation = inputs
        ctx.save_for_backward(x, feedback)
        ctx.conf = (stride, padding, dilation)
        ctx.weight_shape = weight.shape
        ctx.weight_dtype = weight.dtype
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        stride, padding, dilation = ctx.conf
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        dtype = ctx.weight_dtype
        # One fused call, as for an ordinary convolution: the input gradient is
        # computed with B in the weight slot; the weight and bias gradients do
        # not depend on the weight's values (same as torch.nn.grad.conv2d_input /
        # conv2d_weight with B and with W).
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out.to(dtype), x.to(dtype), feedback.to(dtype),
            [feedback.shape[0]] if need_b else None,
            stride, padding, dilation, False, [0, 0], 1, (need_x, need_w, need_b),
        )
        if grad_x is not None:
            grad_x = grad_x.to(x.dtype)
        if grad_b is not None:
            grad_b = grad_b.to(ctx.bias_dtype)
        return grad_x, grad_w, grad_b, None, None, None, None


class _LocalLossFunction(torch.autograd.Function):
    """A scalar ``R(B)`` whose value and gradient were computed in closed form.

    ``forward(feedback, value, grad)`` returns ``value``; the backward pass
    gives ``feedback`` the gradient ``grad_out * grad``. The only thing kept
    for the backward pass is ``grad`` (the shape of ``B``): no graph through
    the local loss's convolutions is built or stored.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(feedback, value, grad):
        return value.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[2])

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad * grad_out.to(grad.dtype), None, None

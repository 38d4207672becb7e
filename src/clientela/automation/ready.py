"""Scenarios ready to switch on, with their e-mails written (in Portuguese, for the shop's
customers): each a function of the template ids it gets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Letter:
    """An e-mail a ready-made scenario sends: its template and subject."""

    name: str
    subject: str
    html: str


@dataclass(frozen=True)
class ReadyMade:
    key: str
    name: str
    trigger: dict[str, Any]
    goal_event: str | None
    reentry: str
    letters: tuple[Letter, ...]
    # Steps, with {"email": i} standing for an e-mail step of the i-th letter (and its
    # other keys, e.g. a coupon, going to that step).
    plan: tuple[dict[str, Any], ...]

    def steps(self, template_ids: list[int]) -> list[dict[str, Any]]:
        steps = []
        for step in self.plan:
            if "email" in step:
                letter = step["email"]
                steps.append({"type": "email", "template_id": template_ids[letter],
                              "subject": self.letters[letter].subject,
                              **{k: v for k, v in step.items() if k != "email"}})
            else:
                steps.append(step)
        return steps


_CART_ITEMS = """\
<h1>{{ customer.first_name | default("Olá") }}, você esqueceu algo no carrinho</h1>
{% if cart %}<table>{% for item in cart.items %}<tr>
  <td>{% if item.image_url %}<img src="{{ item.image_url }}" width="80" alt="">{% endif %}</td>
  <td>{{ item.quantity }} × <a href="{{ item.url }}">{{ item.name }}</a></td>
  <td>{{ item.total }}</td></tr>{% endfor %}</table>
<p>Total: <b>{{ cart.total }}</b></p>{% endif %}
<p><a href="{{ shop_url | default('https://loja.example') }}/carrinho">Finalizar compra</a></p>
"""
_RECOMMENDED = """\
{% if recommended %}<h2>Você também pode gostar</h2><ul>{% for product in recommended %}
<li><a href="{{ product.url }}">{{ product.name }}</a> {{ product.price }}</li>{% endfor %}
</ul>{% endif %}
"""

READY_MADE = {ready.key: ready for ready in (
    ReadyMade(
        key="abandoned_cart", name="Carrinho abandonado",
        trigger={"type": "cart_abandoned"}, goal_event="Order Completed", reentry="always",
        letters=(Letter("1 hora depois", "Seus itens estão esperando por você",
                        _CART_ITEMS),
                 Letter("24 horas depois", "Ainda pensando? Seu carrinho continua aqui",
                        _CART_ITEMS),
                 Letter("72 horas depois", "Última chance: seu carrinho vai expirar",
                        _CART_ITEMS)),
        # The cart counts as abandoned an hour after its last change: 1 h, 24 h, 72 h.
        plan=({"email": 0}, {"type": "wait", "hours": 23}, {"email": 1},
              {"type": "wait", "hours": 48}, {"email": 2})),
    ReadyMade(
        key="welcome", name="Boas-vindas", trigger={"type": "subscribed"}, goal_event=None,
        reentry="never",
        letters=(Letter("1. boas-vindas", "Bem-vindo(a), {{ customer.first_name }}!",
                        "<h1>Que bom ter você aqui, {{ customer.first_name | default('') }}!"
                        "</h1><p>Novidades e ofertas vão chegar por aqui.</p>"
                        + _RECOMMENDED),
                 Letter("2. mais vendidos", "Os mais vendidos da semana",
                        "<h1>Os favoritos dos nossos clientes</h1>" + _RECOMMENDED)),
        plan=({"email": 0}, {"type": "wait", "days": 3}, {"email": 1})),
    ReadyMade(
        key="post_purchase", name="Pós-compra", trigger={"type": "event",
                                                         "event": "Order Completed"},
        goal_event=None, reentry="always",
        letters=(Letter("1. obrigado", "Obrigado pela sua compra!",
                        "<h1>Obrigado, {{ customer.first_name | default('') }}!</h1>"
                        "{% if last_order %}<p>Pedido {{ last_order.number }}: "
                        "{{ last_order.total }}</p><ul>{% for item in last_order.items %}"
                        "<li>{{ item.quantity }} × {{ item.name }}</li>{% endfor %}</ul>"
                        "{% endif %}"),
                 Letter("2. combina com", "Escolhemos isto para você",
                        "<h1>Combina com a sua compra</h1>" + _RECOMMENDED),
                 Letter("3. avaliação", "Conte o que achou",
                        "<h1>O que achou da compra?</h1>{% if last_order %}<ul>"
                        "{% for item in last_order.items %}<li><a href=\"{{ item.url }}\">"
                        "Avaliar {{ item.name }}</a></li>{% endfor %}</ul>{% endif %}")),
        # After a week, each follow-up waits for the customer's best hour.
        plan=({"email": 0}, {"type": "wait", "days": 7}, {"type": "wait", "best_hour": True},
              {"email": 1}, {"type": "wait", "days": 7}, {"type": "wait", "best_hour": True},
              {"email": 2})),
    ReadyMade(
        key="win_back", name="Reconquista", trigger={"type": "inactive"},
        goal_event="Order Completed", reentry="after_exit",
        letters=(Letter("1. sentimos sua falta", "Sentimos sua falta, {{ customer.first_name }}",
                        "<h1>Faz tempo que você não aparece!</h1><p>Use o cupom "
                        "<b>{{ coupon }}</b> na próxima compra.</p>"
                        + _RECOMMENDED),
                 Letter("2. cupom ainda vale", "Seu cupom ainda vale",
                        "<h1>Seu cupom <b>{{ coupon }}</b> ainda vale"
                        "</h1>" + _RECOMMENDED)),
        plan=({"email": 0, "coupon": "VOLTA10"}, {"type": "wait", "days": 7},
              {"email": 1, "coupon": "VOLTA10"})),
    ReadyMade(
        key="birthday", name="Aniversário", trigger={"type": "birthday"}, goal_event=None,
        reentry="always",
        letters=(Letter("parabéns", "Feliz aniversário, {{ customer.first_name }}!",
                        "<h1>Parabéns, {{ customer.first_name | default('') }}!</h1>"
                        "<p>Um presente: o cupom <b>{{ coupon }}</b>."
                        "</p>" + _RECOMMENDED),),
        plan=({"type": "wait", "until_hour": 12}, {"email": 0, "coupon": "NIVER15"})),
)}

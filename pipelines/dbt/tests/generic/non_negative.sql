{#- Rows where the column is below zero: a failing test stops what depends on the model. -#}
{% test non_negative(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < 0
{% endtest %}
